{#- Open cart touched in the last cart_hot_window_hours (1). -#}
{% macro audience_cart_abandon_hot_0_1h() -%}
    is_cart_open and last_cart_at > {{ t_minus(var('cart_hot_window_hours'), 'hour') }}
{%- endmacro %}

{{ audience_members() }}
