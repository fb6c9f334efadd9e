{#- Ordered before, last order lapsed_early_days (60, included) to lapsed_days (90) days ago. -#}
{% macro audience_lapsed_60_89d() -%}
    order_count >= 1
    and last_order_at <= {{ t_minus(var('lapsed_early_days'), 'day') }}
    and last_order_at > {{ t_minus(var('lapsed_days'), 'day') }}
{%- endmacro %}

{{ audience_members() }}
