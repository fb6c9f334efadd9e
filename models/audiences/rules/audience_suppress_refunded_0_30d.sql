{#- Refunded in the last suppress_refund_days (30) days: exclude them from every campaign. -#}
{% macro audience_suppress_refunded_0_30d() -%}
    last_refunded_at > {{ t_minus(var('suppress_refund_days'), 'day') }}
{%- endmacro %}

{{ audience_members() }}
