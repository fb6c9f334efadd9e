{#-
    Per person with cart activity: when they last added to cart or started checkout, and
    what the cart since their last order is worth. Value: the latest checkout in that span
    that states a value (value, else revenue, else total); without one, the item sum
    max(0, adds - removes) of price x quantity (price missing: 0, quantity missing: 1).
    Whether the cart is open is decided in int_person_facts.
-#}
with

cart_events as (

    select
        message_id,
        person_id,
        event_kind,
        coalesce(price, 0) * coalesce(quantity, 1) as line_value,
        coalesce(value, revenue, total) as checkout_value,
        event_at,
        received_at
    from {{ ref('int_events_identified') }}
    where
        event_kind in ('cart_add', 'cart_remove', 'checkout')
        and {{ is_person_changed('person_id') }}

),

last_orders as (

    select
        person_id,
        max(ordered_at) as last_order_at
    from {{ ref('int_orders') }}
    group by person_id

),

since_last_order as (

    select cart_events.*
    from cart_events
    left join last_orders
        on cart_events.person_id = last_orders.person_id
    where
        last_orders.last_order_at is null
        or cart_events.event_at > last_orders.last_order_at

),

latest_checkout as (

    select
        person_id,
        checkout_value
    from since_last_order
    where event_kind = 'checkout' and checkout_value is not null
    qualify row_number() over (
        partition by person_id
        order by event_at desc, received_at desc, message_id desc
    ) = 1

),

item_sums as (

    select
        person_id,
        greatest(
            0,
            sum(case when event_kind = 'cart_add' then line_value else 0 end)
            - sum(case when event_kind = 'cart_remove' then line_value else 0 end)
        ) as item_value
    from since_last_order
    group by person_id

),

last_carts as (

    select
        person_id,
        max(event_at) as last_cart_at
    from cart_events
    where event_kind in ('cart_add', 'checkout')
    group by person_id

),

carts as (

    select
        last_carts.person_id,
        last_carts.last_cart_at,
        coalesce(latest_checkout.checkout_value, item_sums.item_value, 0) as cart_value
    from last_carts
    left join latest_checkout
        on last_carts.person_id = latest_checkout.person_id
    left join item_sums
        on last_carts.person_id = item_sums.person_id

)

select * from carts
