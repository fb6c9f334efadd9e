{#-
    Where `source('customerio', ...)` points, decided by vars only (never an SQL edit):
      customerio_tracks + customerio_identifies  Pipelines files read in place (DuckDB): an
                                                 on-run-start hook declares one view per table
                                                 over them, named customerio_files__<table>
      customerio_schema (+ customerio_database)  loaded tables named tracks / identifies
      neither                                    the demo seeds customerio_demo_<table>
    The staging models read the source and nothing else, so dbt's unit tests replace their
    input whatever the mode. The source YAML picks the identifier; these macros build the
    views and tell the models which mode is on.

    Why a view and not dbt-duckdb's `external_location`: that is a string fixed when the
    YAML is parsed, but reading Customer.io's files needs a look at them first (which key
    spellings and flattened `properties_<key>` columns this export has; whether the glob
    matches anything, to fail with a message naming the var rather than a DuckDB trace).
-#}
{% macro customerio_uses_demo_seeds() -%}
    {{ return(
        not var('customerio_schema', none)
        and not var('customerio_tracks', none)
        and not var('customerio_identifies', none)
    ) }}
{%- endmacro %}


{#-
    The staging models' line that orders them after the demo seeds, which they read through
    the source when no customerio_* var is set (a source alone carries no dependency). Not
    in a unit test, whose inputs are its fixtures only.
-#}
{% macro customerio_demo_seed_dependency(table_name) -%}
    {%- if customerio_uses_demo_seeds() and model.resource_type != 'unit_test' %}
-- depends_on: {{ ref('customerio_demo_' ~ table_name) }}
    {%- endif -%}
{%- endmacro %}


{#-
    on-run-start: when the file vars are set, (re)declare the view the source resolves to
    for `table_name`. Checks the vars and the files first, with errors a user can act on.
-#}
{% macro declare_customerio_files(table_name) -%}
    {%- set files = var('customerio_' ~ table_name, none) -%}
    {%- if not execute or not files -%}
        {{ return('') }}
    {%- endif -%}
    {%- set other = 'customerio_' ~ ('identifies' if table_name == 'tracks' else 'tracks') -%}
    {%- if not var(other, none) -%}
        {{ exceptions.raise_compiler_error(
            "var customerio_" ~ table_name ~ " is set but " ~ other ~ " is not: files are read"
            ~ " for both tables or neither (set both, e.g. \"landing/*.track.parquet\" and"
            ~ " \"landing/*.identify.parquet\")"
        ) }}
    {%- endif -%}
    {%- if var('customerio_schema', none) -%}
        {{ exceptions.raise_compiler_error(
            "vars customerio_tracks/customerio_identifies (files) and customerio_schema (loaded"
            ~ " tables) are both set: set one or the other"
        ) }}
    {%- endif -%}
    {%- set source_relation = source('customerio', table_name) -%}
    {%- set select_sql = read_customerio_files(table_name, files | string) -%}
    {%- do adapter.create_schema(source_relation) -%}
    create or replace view {{ source_relation }} as {{ select_sql }}
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
    The columns staging reads, each with the spellings Customer.io's destinations use for
    it (snake_case in warehouse loads, camelCase as sent over the API), first one wins.
-#}
{% macro customerio_file_columns(table_name) -%}
    {%- set columns = {'id': ['id', 'messageId', 'message_id']} -%}
    {%- if table_name == 'tracks' -%}
        {%- do columns.update({'event': ['event'], 'event_text': ['event_text', 'eventText']}) -%}
    {%- endif -%}
    {%- do columns.update({
        'user_id': ['user_id', 'userId'],
        'anonymous_id': ['anonymous_id', 'anonymousId'],
        'timestamp': ['timestamp'],
        'received_at': ['received_at', 'receivedAt'],
    }) -%}
    {{ return(columns) }}
{%- endmacro %}


{#-
    One SELECT over the files in `table_name`'s shape (customerio_file_columns + the payload
    as JSON text), whatever the format: JSON lines (.json, .jsonl, .ndjson, also gzipped),
    Parquet or CSV. Files are unioned by column name; a column no file
    has is null. JSON keys are declared up front (any spelling, payload as object or text);
    Parquet and CSV are described first, so that flattened `properties_<key>` columns
    become the payload object again and the spellings present are the ones read.
-#}
{% macro duckdb__read_customerio_files(table_name, files) -%}
    {%- set var_name = 'customerio_' ~ table_name -%}
    {%- set path = files | replace("'", "''") -%}
    {%- set payload = 'properties' if table_name == 'tracks' else 'traits' -%}
    {%- set columns = customerio_file_columns(table_name) -%}
    {%- set extension = (files | lower | replace('.gz', '')).split('.')[-1] -%}

    {%- set matched = run_query("select count(*) from glob('" ~ path ~ "')").columns[0].values()[0] -%}
    {%- if matched == 0 -%}
        {{ exceptions.raise_compiler_error(
            "var " ~ var_name ~ ": no file matches '" ~ files ~ "' (a relative path is read"
            ~ " from the directory dbt runs in). Check the path, or list it: ls " ~ files
        ) }}
    {%- endif -%}

    {%- if extension in ['json', 'jsonl', 'ndjson'] -%}
        {#- every spelling declared (a key a file lacks reads as null), the payload as JSON -#}
        {%- set present = {} -%}
        {%- for spellings in columns.values() -%}
            {%- for spelling in spellings -%}
                {%- do present.update({spelling | lower: {'name': spelling, 'type': 'VARCHAR'}}) -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- do present.update({payload: {'name': payload, 'type': 'JSON'}}) -%}
        {%- set declared = [] -%}
        {%- for column in present.values() -%}
            {%- do declared.append('"' ~ column['name'] ~ '": \'' ~ column['type'] | lower ~ '\'') -%}
        {%- endfor -%}
        {%- set reader -%}
            read_json('{{ path }}', format = 'newline_delimited', columns = { {{ declared | join(', ') }} })
        {%- endset -%}
    {%- elif extension in ['parquet', 'csv'] -%}
        {%- if extension == 'parquet' -%}
            {%- set reader = "read_parquet('" ~ path ~ "', union_by_name = true)" -%}
        {%- else -%}
            {#- text throughout: staging parses every value itself, and a sniffed type would differ from file to file -#}
            {%- set reader = "read_csv('" ~ path ~ "', header = true, all_varchar = true, union_by_name = true)" -%}
        {%- endif -%}
        {%- set present = {} -%}
        {%- for row in run_query("describe select * from " ~ reader) -%}
            {%- do present.update({row['column_name'] | lower: {'name': row['column_name'], 'type': row['column_type']}}) -%}
        {%- endfor -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error(
            "var " ~ var_name ~ ": '" ~ files ~ "' has extension ." ~ extension ~ "; Pipelines"
            ~ " files are read as .json/.jsonl/.ndjson (JSON lines, also .gz), .parquet or .csv"
        ) }}
    {%- endif -%}

    (
        select
            {%- for column, spellings in columns.items() %}
            {{ customerio_file_column(present, spellings) }} as {{ adapter.quote(column) }},
            {%- endfor %}
            {{ customerio_file_payload(present, payload) }} as {{ payload }}
        from {{ reader }}
    )
{%- endmacro %}


{#- The first spelling the files have, coalesced with the others present; else null. -#}
{% macro customerio_file_column(present, spellings) -%}
    {%- set found = [] -%}
    {%- for spelling in spellings if spelling | lower in present -%}
        {%- do found.append(adapter.quote(present[spelling | lower]['name'])) -%}
    {%- endfor -%}
    {{ first_non_null(found) }}
{%- endmacro %}


{#- The first non-null of the SQL expressions `parts`, in order; null (text) when none. -#}
{% macro first_non_null(parts) -%}
    {%- if parts | length == 0 -%}
        cast(null as varchar)
    {%- elif parts | length == 1 -%}
        {{ parts[0] }}
    {%- else -%}
        coalesce({{ parts | join(', ') }})
    {%- endif -%}
{%- endmacro %}


{#-
    The payload as JSON text: the `properties`/`traits` column (JSON, a struct or map, or
    text), else the object rebuilt from its flattened `<payload>_<key>` columns.
-#}
{% macro customerio_file_payload(present, payload) -%}
    {%- set parts = [] -%}
    {%- if payload in present -%}
        {%- set column = present[payload] -%}
        {%- if column['type'].startswith('STRUCT') or column['type'].startswith('MAP') -%}
            {%- do parts.append('cast(to_json(' ~ adapter.quote(column['name']) ~ ') as varchar)') -%}
        {%- else -%}
            {%- do parts.append('cast(' ~ adapter.quote(column['name']) ~ ' as varchar)') -%}
        {%- endif -%}
    {%- endif -%}
    {%- set flattened = [] -%}
    {%- for key, column in present.items() if key.startswith(payload ~ '_') -%}
        {%- do flattened.append("'" ~ column['name'][payload | length + 1:] ~ "', " ~ adapter.quote(column['name'])) -%}
    {%- endfor -%}
    {%- if flattened -%}
        {%- do parts.append('cast(json_object(' ~ flattened | join(', ') ~ ') as varchar)') -%}
    {%- endif -%}
    {{ first_non_null(parts) }}
{%- endmacro %}
