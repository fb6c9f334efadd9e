{#- Ordered before, last order lapsed_days (90) or more days ago. -#}
{% macro audience_lapsed_90d_plus() -%}
    order_count >= 1 and last_order_at <= {{ t_minus(var('lapsed_days'), 'day') }}
{%- endmacro %}

{{ audience_members() }}
