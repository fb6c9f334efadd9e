{#-
    Every (person, audience) membership at T, before identifiers: each person with a state is
    in that exclusive audience, and in every enabled suppression list whose rule they meet,
    whatever their state. People without a usable identifier are here too (audience_coverage
    counts them); int_email_audiences keeps the rows that can reach Bing.
-#}
{%- set suppressions = suppression_states() -%}

with

people as (

    select * from {{ ref('int_person_states') }}

),

memberships as (

    select
        person_id,
        email_sha256,
        'audience_' || state as audience,
        'exclusive' as slot,
        state_priority,
        ltv_tier,
        as_of
    from people
    where state is not null
    {%- for state in suppressions %}
        union all
        select
            person_id,
            email_sha256,
            'audience_{{ state }}' as audience,
            'audience_{{ state }}' as slot,
            0 as state_priority,
            ltv_tier,
            as_of
        from people
        where rule_{{ state }}
    {%- endfor %}

)

select * from memberships
