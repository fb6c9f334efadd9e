{#- Marked "no discount" in Customer.io (the boolean trait named by var no_discount_trait). -#}
{% macro audience_suppress_no_discount() -%}
    is_no_discount
{%- endmacro %}

{{ audience_members() }}
