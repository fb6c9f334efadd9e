{#-
    An email trait -> email_sha256, per the spec: trim whitespace (Unicode's, see
    trim_whitespace), lowercase; exactly 64 hex characters is an already-hashed identifier,
    passed through; otherwise it must look like local@domain.tld with no whitespace, else
    null (the person has no usable email).
    The raw value exists only inside this expression.
-#}
{% macro email_sha256(expression) -%}
    {{ return(adapter.dispatch('email_sha256', 'cio_bing_audiences')(expression)) }}
{%- endmacro %}

{% macro default__email_sha256(expression) -%}
    {%- set normalized -%}
        lower({{ trim_whitespace(expression) }})
    {%- endset -%}
    case
        when regexp_full_match({{ normalized }}, '[0-9a-f]{64}')
            then {{ normalized }}
        when regexp_full_match({{ normalized }}, '[^@{{ whitespace_class() }}]+@[^@{{ whitespace_class() }}]+\.[^@{{ whitespace_class() }}]+')
            then {{ sha256_hex(normalized) }}
    end
{%- endmacro %}
