{#-
    The commerce events that count at T: mapped to a canonical kind through the
    customerio_event_kinds seed (unmapped names are dropped), happened by T, and carried
    by a person (user_id, else the user_id its anonymous_id resolves to).
-#}
with

events as (

    select * from {{ ref('stg_customerio__tracks') }}
    where event_at <= {{ as_of() }}

),

event_kinds as (

    select * from {{ ref('customerio_event_kinds') }}

),

anonymous_ids as (

    select * from {{ ref('int_anonymous_ids_resolved') }}

),

identified as (

    select
        events.message_id,
        coalesce(events.user_id, anonymous_ids.user_id) as person_id,
        event_kinds.event_kind,
        events.order_id,
        events.price,
        events.quantity,
        events.total,
        events.revenue,
        events.value,
        events.subtotal,
        events.event_at,
        events.received_at
    from events
    inner join event_kinds
        on events.event_name = event_kinds.event_name
    left join anonymous_ids
        on
            events.user_id is null
            and events.anonymous_id = anonymous_ids.anonymous_id

)

select * from identified
where person_id is not null
