{#- Net revenue of at least ltv_high_threshold (500). -#}
{% macro audience_ltv_high() -%}
    ltv_tier = 'high'
{%- endmacro %}

{{ audience_members() }}
