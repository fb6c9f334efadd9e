{#-
    Where the Customer.io tables come from, decided by vars only (never an SQL edit):
      customerio_tracks / customerio_identifies  a path or glob of Pipelines files, read in place
      customerio_schema (+ customerio_database)  loaded tables named tracks / identifies
      neither                                    the demo seeds customerio_demo_<table>
    The source is always registered, so lineage and docs show it whatever the mode.
-#}
{% macro customerio_uses_demo_seeds() -%}
    {{ return(
        not var('customerio_schema', none)
        and not var('customerio_tracks', none)
        and not var('customerio_identifies', none)
    ) }}
{%- endmacro %}


{% macro customerio_source(table_name) -%}
    {%- set declared = source('customerio', table_name) -%}
    {%- set files = var('customerio_' ~ table_name, none) -%}
    {%- if files -%}
        {{ read_customerio_files(table_name, files) }}
    {%- elif customerio_uses_demo_seeds() -%}
        {{ ref('customerio_demo_' ~ table_name) }}
    {%- else -%}
        {{ declared }}
    {%- endif -%}
{%- endmacro %}


{% macro read_customerio_files(table_name, files) -%}
    {{ return(adapter.dispatch('read_customerio_files', 'cio_bing_audiences')(table_name, files)) }}
{%- endmacro %}


{% macro default__read_customerio_files(table_name, files) -%}
    {{ exceptions.raise_compiler_error(
        "var customerio_" ~ table_name ~ " (files read in place) needs DuckDB; on "
        ~ adapter.type() ~ " load the files into tables and set customerio_schema instead"
    ) }}
{%- endmacro %}


{#-
    JSON lines (camelCase or snake_case keys) or Parquet, told apart by the extension.
    Columns are named explicitly, so a key missing from a file is a null, not an error,
    and both key spellings of the Pipelines API land in the same column.
-#}
{% macro duckdb__read_customerio_files(table_name, files) -%}
    {%- set path = files | replace("'", "''") -%}
    {%- set payload = 'properties' if table_name == 'tracks' else 'traits' -%}
    {%- set event_columns = "event, event_text, " if table_name == 'tracks' else "" -%}
    {%- if path.endswith('.parquet') -%}
        (
            select
                id,
                {{ event_columns }}
                user_id,
                anonymous_id,
                "timestamp",
                received_at,
                cast({{ payload }} as varchar) as {{ payload }}
            from read_parquet('{{ path }}', union_by_name = true)
        )
    {%- else -%}
        (
            select
                coalesce(id, "messageId") as id,
                {% if table_name == 'tracks' -%}
                    event,
                    coalesce(event_text, "eventText") as event_text,
                {% endif -%}
                coalesce(user_id, "userId") as user_id,
                coalesce(anonymous_id, "anonymousId") as anonymous_id,
                "timestamp",
                coalesce(received_at, "receivedAt") as received_at,
                cast({{ payload }} as varchar) as {{ payload }}
            from read_json(
                '{{ path }}',
                format = 'newline_delimited',
                columns = {
                    id: 'varchar', "messageId": 'varchar',
                    {% if table_name == 'tracks' -%}
                        event: 'varchar', event_text: 'varchar', "eventText": 'varchar',
                    {% endif -%}
                    user_id: 'varchar', "userId": 'varchar',
                    anonymous_id: 'varchar', "anonymousId": 'varchar',
                    "timestamp": 'varchar',
                    received_at: 'varchar', "receivedAt": 'varchar',
                    {{ payload }}: 'json'
                }
            )
        )
    {%- endif -%}
{%- endmacro %}
