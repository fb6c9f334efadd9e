{#- Bought in the last recent_purchase_days (7) days. -#}
{% macro audience_recent_purchaser_0_7d() -%}
    last_order_at > {{ t_minus(var('recent_purchase_days'), 'day') }}
{%- endmacro %}

{{ audience_members() }}
