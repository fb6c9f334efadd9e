{#-
    Each person's boolean traits at T, for the suppression lists: per trait, the value of the
    latest identify that states it (by event time, ties: latest received_at, then greatest
    message id); an identify that does not state a trait leaves it as it was. People who
    never stated either trait have no row.
-#}
with

identifies as (

    select * from {{ ref('stg_customerio__identifies') }}
    where
        identified_at <= {{ as_of() }}
        and user_id is not null
        and {{ is_person_changed('user_id') }}

),

statements as (

    select
        user_id as person_id,
        'no_discount' as trait,
        is_no_discount as trait_value,
        identified_at,
        received_at,
        message_id
    from identifies
    where is_no_discount is not null
    union all
    select
        user_id as person_id,
        'support_escalation' as trait,
        is_support_escalated as trait_value,
        identified_at,
        received_at,
        message_id
    from identifies
    where is_support_escalated is not null

),

latest as (

    select
        person_id,
        trait,
        trait_value
    from statements
    qualify row_number() over (
        partition by person_id, trait
        order by identified_at desc, received_at desc, message_id desc
    ) = 1

),

final as (

    select
        person_id,
        coalesce(max(case when trait = 'no_discount' then trait_value end), false)
            as is_no_discount,
        coalesce(max(case when trait = 'support_escalation' then trait_value end), false)
            as is_support_escalated
    from latest
    group by person_id

)

select * from final
