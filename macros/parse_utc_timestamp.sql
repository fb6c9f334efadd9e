{#-
    Pipelines timestamps arrive as ISO-8601 text (with Z or an offset), as TIMESTAMPTZ, or
    as a naive TIMESTAMP meant as UTC. All become a naive UTC timestamp, kept to the
    microsecond, whatever the session time zone. Unparseable text becomes null.
-#}
{% macro parse_utc_timestamp(expression) -%}
    {{ return(adapter.dispatch('parse_utc_timestamp', 'cio_bing_audiences')(expression)) }}
{%- endmacro %}

{% macro default__parse_utc_timestamp(expression) -%}
    cast({{ expression }} as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#-
    DuckDB: the input's type is known when the query is bound, so typeof() folds to a
    constant and only the matching branch runs (text parsing costs ~6x a typed cast).
-#}
{% macro duckdb__parse_utc_timestamp(expression) -%}
    {%- set text = 'trim(cast(' ~ expression ~ ' as varchar))' -%}
    case typeof({{ expression }})
        when 'TIMESTAMP WITH TIME ZONE'
            then make_timestamp(epoch_us(try_cast({{ expression }} as timestamptz)))
        when 'TIMESTAMP' then try_cast({{ expression }} as timestamp)
        when 'VARCHAR' then timezone(
            'UTC',
            try_cast(
                case
                    when regexp_matches({{ text }}, '([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)$')
                        then {{ text }}
                    else {{ text }} || '+00'
                end as timestamptz
            )
        )
        else try_cast({{ expression }} as timestamp)
    end
{%- endmacro %}
