{#-
    Every (email_sha256, audience) membership the Bing lists hold. Exclusive family: each
    hash is in exactly one of those audiences, the highest-priority state among the people
    carrying it, so no hash is in two of those lists. Suppression lists stand beside them: a
    hash is in one when any person carrying it meets its rule, whatever their state. The
    person shown is the smallest person_id among those carrying the hash in that audience.
-#}
with

memberships as (

    select * from {{ ref('int_person_audiences') }}
    where email_sha256 is not null

),

chosen as (

    select
        email_sha256,
        audience,
        slot,
        person_id,
        ltv_tier,
        as_of
    from memberships
    qualify row_number() over (
        partition by email_sha256, slot
        order by state_priority, person_id
    ) = 1

)

select * from chosen
