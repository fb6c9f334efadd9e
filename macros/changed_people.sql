{#-
    The per-person incremental models (see int_people_changed; configured together in
    models/intermediate/_int__models.yml) rewrite only the people whose inputs changed: a
    pre-hook deletes their rows, the model selects their rows anew,
    and dbt appends them. Deleting first (not delete+insert on a unique key) also removes a
    person who has no rows any more, e.g. whose anonymous events now belong to someone else.
-#}
{% macro delete_changed_people() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where person_id in (select changed.person_id from {{ ref('int_people_changed') }} as changed)
    {%- endif -%}
{%- endmacro %}


{#- The condition each per-person model filters its people with: `<column> in (changed)` on
    incremental builds, `true` on full ones. -#}
{% macro is_person_changed(column) -%}
    {#- ref() outside the branch, so dbt records the dependency when it parses -#}
    {%- set changed = ref('int_people_changed') -%}
    {%- if is_incremental() -%}
        {{ column }} in (select changed.person_id from {{ changed }} as changed)
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
