{#- The column holds only states of the registry's enabled exclusive audiences. -#}
{% test is_registered_state(model, column_name) %}
{%- set states = exclusive_states() %}
select {{ column_name }} from {{ model }}
where {{ column_name }} is not null
{%- for state in states %}
    {{ 'and ' ~ column_name ~ ' not in (' if loop.first }}'{{ state }}'{{ ', ' if not loop.last else ')' }}
{%- endfor %}
{% endtest %}
