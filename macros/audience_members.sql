{#-
    The body of every audience_<state> mart: one row per email_sha256 whose identifier-level
    state is `state`, in the columns the sync reads (contract-enforced in the YAML).
-#}
{% macro audience_members(state) -%}
with

members as (

    select * from {{ ref('int_email_audiences') }}
    where state = '{{ state }}'

),

final as (

    select
        cast(email_sha256 as varchar) as email_sha256,
        cast(person_id as varchar) as person_id,
        cast(ltv_tier as varchar) as ltv_tier,
        cast(as_of as {{ dbt.type_timestamp() }}) as as_of
    from members

)

select * from final
{%- endmacro %}
