{#-
    `Order Completed`, `order_completed` and `ORDER-COMPLETED` are one name: lowercase,
    every run of characters outside [a-z0-9] becomes one `_`, no leading/trailing `_`.
    The human name (event_text) wins; the slug (event) is the fallback when it is empty.
-#}
{% macro normalize_event_name(event_text, event) -%}
    {{ return(adapter.dispatch('normalize_event_name', 'cio_bing_audiences')(event_text, event)) }}
{%- endmacro %}

{% macro default__normalize_event_name(event_text, event) -%}
    trim(
        regexp_replace(
            lower(coalesce(nullif(trim({{ event_text }}), ''), {{ event }})),
            '[^a-z0-9]+', '_', 'g'
        ),
        '_'
    )
{%- endmacro %}
