{#- Open cart of at least high_aov_threshold (80), touched in the last cart_window_hours (24). -#}
{% macro audience_cart_abandon_high_aov_0_1d() -%}
    is_cart_open and last_cart_at > {{ t_minus(var('cart_window_hours'), 'hour') }} and cart_value >= {{ var('high_aov_threshold') }}
{%- endmacro %}

{{ audience_members() }}
