{#- Open cart last touched cart_window_hours (24) to cart_late_window_hours (72) hours ago. -#}
{% macro audience_cart_abandon_1_3d() -%}
    is_cart_open
    and last_cart_at <= {{ t_minus(var('cart_window_hours'), 'hour') }}
    and last_cart_at > {{ t_minus(var('cart_late_window_hours'), 'hour') }}
{%- endmacro %}

{{ audience_members() }}
