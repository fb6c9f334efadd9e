{#-
    Which person an anonymous_id belongs to at T: the latest identify (by event time, as of
    T) linking it to a user_id. Applies to that anonymous_id's events before the identify
    too, so an anonymous cart counts for the person who identified later.
-#}
with

identifies as (

    select * from {{ ref('stg_customerio__identifies') }}
    where
        identified_at <= {{ as_of() }}
        and anonymous_id is not null
        and user_id is not null

),

latest_link as (

    select
        anonymous_id,
        user_id
    from identifies
    qualify row_number() over (
        partition by anonymous_id
        order by identified_at desc, received_at desc, message_id desc
    ) = 1

)

select * from latest_link
