{#-
    The instant T the audience states are computed for, as a UTC timestamp literal.

    One value for the whole invocation (taken from `run_started_at`, never from a
    per-model `current_timestamp`), so every model of one build agrees on T.
    Precedence: the `as_of` var; else, when the sources are the demo seeds, the pinned
    `demo_as_of` (a fresh clone builds the same audiences every day); else the build's
    start time.
-#}
{% macro as_of() -%}
    {%- set raw = var('as_of', none) -%}
    {%- if raw is none or raw | string | trim == '' -%}
        {%- if customerio_uses_demo_seeds() -%}
            {%- set raw = var('demo_as_of') -%}
        {%- else -%}
            {%- set raw = run_started_at.isoformat() -%}
        {%- endif -%}
    {%- endif -%}
    {%- set text = raw | string | trim -%}
    {%- set parsed = none -%}
    {%- if modules.re.match('^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$', text) -%}
        {%- set parsed = modules.datetime.datetime.fromisoformat(text | replace('Z', '+00:00')) -%}
    {%- endif -%}
    {%- if parsed is none -%}
        {{ exceptions.raise_compiler_error(
            "var 'as_of' must be an ISO-8601 UTC timestamp such as 2026-11-28T12:00:00Z, got '" ~ text ~ "'"
        ) }}
    {%- endif -%}
    {%- if parsed.tzinfo is not none -%}
        {%- set parsed = parsed.astimezone(modules.pytz.utc).replace(tzinfo=none) -%}
    {%- endif -%}
    cast('{{ parsed.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}
