{#-
    Exclusivity per identifier: two people can share one email, but each email_sha256 is in
    exactly one audience, the highest-priority state among the people carrying it, so no
    hash is ever in two Bing lists. The person shown is the smallest person_id among
    those carrying the hash in that state.
-#}
with

people_with_state as (

    select * from {{ ref('int_person_states') }}
    where state is not null and email_sha256 is not null

),

winners as (

    select
        email_sha256,
        state,
        person_id,
        ltv_tier,
        as_of
    from people_with_state
    qualify row_number() over (
        partition by email_sha256
        order by state_priority, person_id
    ) = 1

)

select * from winners
