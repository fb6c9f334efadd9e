{#-
    A person's email hash at T: from the latest identify (by event time, ties: latest
    received_at, then greatest message id) whose email is non-empty. If that email is
    invalid the person has no email, even when an older row held a valid one.
-#}
with

identifies as (

    select * from {{ ref('stg_customerio__identifies') }}
    where
        identified_at <= {{ as_of() }}
        and user_id is not null
        and has_email
        and {{ is_person_changed('user_id') }}

),

latest_email as (

    select
        user_id as person_id,
        email_sha256
    from identifies
    qualify row_number() over (
        partition by user_id
        order by identified_at desc, received_at desc, message_id desc
    ) = 1

)

select * from latest_email
