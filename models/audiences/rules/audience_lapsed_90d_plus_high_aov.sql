{#- Ordered before, last order lapsed_days (90)+ days ago, AOV >= high_aov_threshold (80). -#}
{% macro audience_lapsed_90d_plus_high_aov() -%}
    order_count >= 1
    and last_order_at <= {{ t_minus(var('lapsed_days'), 'day') }}
    and aov >= {{ var('high_aov_threshold') }}
{%- endmacro %}

{{ audience_members() }}
