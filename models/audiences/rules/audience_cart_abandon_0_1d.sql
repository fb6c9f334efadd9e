{#- Open cart touched in the last cart_window_hours (24). -#}
{% macro audience_cart_abandon_0_1d() -%}
    is_cart_open and last_cart_at > {{ t_minus(var('cart_window_hours'), 'hour') }}
{%- endmacro %}

{{ audience_members() }}
