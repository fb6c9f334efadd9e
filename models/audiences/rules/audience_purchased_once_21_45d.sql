{#- One order, placed between once_max_days (45) and once_min_days (21) days ago, both included. -#}
{% macro audience_purchased_once_21_45d() -%}
    order_count = 1 and last_order_at between {{ t_minus(var('once_max_days'), 'day') }} and {{ t_minus(var('once_min_days'), 'day') }}
{%- endmacro %}

{{ audience_members() }}
