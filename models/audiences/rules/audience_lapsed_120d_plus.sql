{#- Ordered before, last order lapsed_long_days (120) or more days ago. -#}
{% macro audience_lapsed_120d_plus() -%}
    order_count >= 1 and last_order_at <= {{ t_minus(var('lapsed_long_days'), 'day') }}
{%- endmacro %}

{{ audience_members() }}
