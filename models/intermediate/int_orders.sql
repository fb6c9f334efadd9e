{#-
    One row per order at T. An order is a distinct order_id of a person (an event without
    one is its own order, keyed by its message id); its time and value come from its earliest event,
    so a re-sent "Order Completed" neither moves the order nor counts it twice. An order
    redeemed an offer when that event names a coupon or a discount other than 0.
-#}
with

order_events as (

    select
        message_id,
        person_id,
        coalesce(order_id, message_id) as order_id,
        coalesce(total, revenue, value, subtotal, 0) as order_value,
        coalesce(coupon is not null or discount != 0, false) as is_offer_redeemed,
        event_at,
        received_at
    from {{ ref('int_events_identified') }}
    where
        event_kind = 'order'
        and {{ is_person_changed('person_id') }}

),

first_event_per_order as (

    select
        order_id,
        person_id,
        order_value,
        is_offer_redeemed,
        event_at as ordered_at
    from order_events
    qualify row_number() over (
        partition by person_id, order_id
        order by event_at, received_at, message_id
    ) = 1

)

select * from first_event_per_order
