{#- Placed an order with a coupon or a discount in the last suppress_offer_days (30) days. -#}
{% macro audience_suppress_offer_redeemed_0_30d() -%}
    last_offer_order_at > {{ t_minus(var('suppress_offer_days'), 'day') }}
{%- endmacro %}

{{ audience_members() }}
