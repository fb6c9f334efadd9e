{#-
    Lowercase hex SHA-256 of the UTF-8 bytes of a string: Microsoft Customer Match's
    hashed-email format. Hashing happens in the warehouse so raw emails never leave it.
    Known answer: sha256('test@contoso.com') =
    f25ad364d33972379a7a4f4df33db142205f5c40eb19cfdb2fc5aaf117e10101
-#}
{% macro sha256_hex(expression) -%}
    {{ return(adapter.dispatch('sha256_hex', 'cio_bing_audiences')(expression)) }}
{%- endmacro %}

{% macro default__sha256_hex(expression) -%}
    lower(sha2({{ expression }}, 256))
{%- endmacro %}

{% macro duckdb__sha256_hex(expression) -%}
    sha256({{ expression }})
{%- endmacro %}

{% macro postgres__sha256_hex(expression) -%}
    encode(sha256(convert_to({{ expression }}, 'UTF8')), 'hex')
{%- endmacro %}

{% macro snowflake__sha256_hex(expression) -%}
    lower(sha2({{ expression }}, 256))
{%- endmacro %}

{% macro bigquery__sha256_hex(expression) -%}
    to_hex(sha256({{ expression }}))
{%- endmacro %}

{% macro spark__sha256_hex(expression) -%}
    lower(sha2(cast({{ expression }} as string), 256))
{%- endmacro %}
