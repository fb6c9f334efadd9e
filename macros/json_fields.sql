{#-
    Safe reads of Customer.io's JSON payloads (properties, traits), which arrive as a JSON
    object or as its text, sometimes malformed. Nothing here can fail the build: what
    cannot be read is null.
-#}

{#- The payload as JSON text, or null when it is not a valid JSON object. -#}
{% macro json_object_text(expression) -%}
    {{ return(adapter.dispatch('json_object_text', 'cio_bing_audiences')(expression)) }}
{%- endmacro %}

{% macro default__json_object_text(expression) -%}
    {%- set text = 'cast(' ~ expression ~ ' as varchar)' -%}
    case
        when not coalesce(json_valid({{ text }}), false) then null
        -- a payload stringified twice: a JSON string holding the text of the object
        when json_type({{ text }}) = 'VARCHAR'
            and coalesce(json_valid(json_extract_string({{ text }}, '$')), false)
            and json_type(json_extract_string({{ text }}, '$')) = 'OBJECT'
            then json_extract_string({{ text }}, '$')
        when json_type({{ text }}) = 'OBJECT' then {{ text }}
    end
{%- endmacro %}


{#-
    Several properties of one JSON object in one parse: a list of JSON fragments, in the
    order of `keys` (null for a missing key; a key may hold spaces, as trait names do). Read them with json_value_text/json_value_number.
-#}
{% macro json_fields(json_text_expression, keys) -%}
    {{ return(adapter.dispatch('json_fields', 'cio_bing_audiences')(json_text_expression, keys)) }}
{%- endmacro %}

{% macro default__json_fields(json_text_expression, keys) -%}
    {%- for key in keys if '"' in key or "'" in key or '\\' in key -%}
        {{ exceptions.raise_compiler_error("JSON key " ~ key ~ " holds a quote or backslash; name the property or trait without one") }}
    {%- endfor %}
    json_extract({{ json_text_expression }}, [{% for key in keys %}'$."{{ key }}"'{{ ", " if not loop.last }}{% endfor %}])
{%- endmacro %}


{#- A JSON fragment holding a scalar, as trimmed text; empty is null. -#}
{% macro json_value_text(fragment) -%}
    {{ return(adapter.dispatch('json_value_text', 'cio_bing_audiences')(fragment)) }}
{%- endmacro %}

{% macro default__json_value_text(fragment) -%}
    case
        when json_type({{ fragment }}) not in ('OBJECT', 'ARRAY', 'NULL')
            then nullif({{ trim_whitespace("json_extract_string(" ~ fragment ~ ", '$')") }}, '')
    end
{%- endmacro %}


{#-
    A JSON fragment as a number: a JSON number, or a string holding a plain decimal number
    after trimming ("12", "12.50", "-3"). Anything else ("50xyz", "$5", "n/a", true) is null.
-#}
{% macro json_value_number(fragment) -%}
    {{ return(adapter.dispatch('json_value_number', 'cio_bing_audiences')(fragment)) }}
{%- endmacro %}

{% macro default__json_value_number(fragment) -%}
    {%- set raw = trim_whitespace('json_extract_string(' ~ fragment ~ ", '$')") -%}
    case
        when json_type({{ fragment }}) in ('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT')
            then try_cast({{ raw }} as {{ dbt.type_numeric() }})
        when json_type({{ fragment }}) = 'VARCHAR'
            and regexp_full_match({{ raw }}, '[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)')
            then try_cast({{ raw }} as {{ dbt.type_numeric() }})
    end
{%- endmacro %}


{#-
    A JSON fragment as a boolean trait: true for true, "true"/"yes"/"y"/"1" (any case,
    trimmed) or 1; false for false, "false"/"no"/"n"/"0" or 0. Null when the key is absent,
    null or anything else: that identify said nothing readable about the trait. (A null
    does not clear it: flattened CSV and Parquet exports cannot tell null from absent.)
-#}
{% macro json_value_boolean(fragment) -%}
    {{ return(adapter.dispatch('json_value_boolean', 'cio_bing_audiences')(fragment)) }}
{%- endmacro %}

{% macro default__json_value_boolean(fragment) -%}
    {%- set raw = 'lower(' ~ trim_whitespace('json_extract_string(' ~ fragment ~ ", '$')") ~ ')' -%}
    case
        when json_type({{ fragment }}) = 'BOOLEAN' then {{ raw }} = 'true'
        when json_type({{ fragment }}) in ('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT', 'VARCHAR')
            then case
                when {{ raw }} in ('true', 'yes', 'y', '1') then true
                when {{ raw }} in ('false', 'no', 'n', '0') then false
            end
    end
{%- endmacro %}
