{#-
    One row per refund event at T with its amount: the amount it states (total, else
    revenue, else value); when it states none, the whole value of the order it refers to
    if that is an order of the same person existing at T; else 0.
-#}
with

refund_events as (

    select
        message_id as refund_id,
        person_id,
        order_id,
        coalesce(total, revenue, value) as stated_amount,
        event_at as refunded_at
    from {{ ref('int_events_identified') }}
    where
        event_kind = 'refund'
        and {{ is_person_changed('person_id') }}

),

orders as (

    select * from {{ ref('int_orders') }}

),

with_amounts as (

    select
        refund_events.refund_id,
        refund_events.person_id,
        refund_events.order_id,
        coalesce(refund_events.stated_amount, orders.order_value, 0) as refund_amount,
        refund_events.refunded_at
    from refund_events
    left join orders
        on
            refund_events.order_id = orders.order_id
            and refund_events.person_id = orders.person_id

)

select * from with_amounts
