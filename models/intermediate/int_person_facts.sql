{#-
    One row of facts per person at T: orders, revenue, cart, email hash, and the last offer,
    refund and support escalation and the traits the suppression lists read. Incremental
    (int_people_changed): rows of unchanged people stay as they are, so nothing here may
    depend on a var; tiers and states are derived in int_person_states for everyone.
-#}
with

people as (

    select distinct person_id from {{ ref('int_events_identified') }}
    where {{ is_person_changed('person_id') }}

),

order_facts as (

    select
        person_id,
        count(*) as order_count,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        sum(order_value) as gross_revenue,
        max(case when is_offer_redeemed then ordered_at end) as last_offer_order_at
    from {{ ref('int_orders') }}
    group by person_id

),

refund_facts as (

    select
        person_id,
        sum(refund_amount) as refunds,
        max(refunded_at) as last_refunded_at
    from {{ ref('int_refunds') }}
    group by person_id

),

support_facts as (

    select
        person_id,
        max(event_at) as last_support_escalation_at
    from {{ ref('int_events_identified') }}
    where
        event_kind = 'support_escalation'
        and {{ is_person_changed('person_id') }}
    group by person_id

),

traits as (

    select * from {{ ref('int_person_traits') }}

),

carts as (

    select * from {{ ref('int_person_carts') }}

),

emails as (

    select * from {{ ref('int_person_emails') }}

),

staging_batches as (

    select staged_at from {{ ref('stg_customerio__tracks') }}
    union all
    select staged_at from {{ ref('stg_customerio__identifies') }}

),

joined as (

    select
        people.person_id,
        emails.email_sha256,
        coalesce(order_facts.order_count, 0) as order_count,
        order_facts.first_order_at,
        order_facts.last_order_at,
        coalesce(order_facts.gross_revenue, 0) as gross_revenue,
        coalesce(refund_facts.refunds, 0) as refunds,
        refund_facts.last_refunded_at,
        order_facts.last_offer_order_at,
        support_facts.last_support_escalation_at,
        coalesce(traits.is_no_discount, false) as is_no_discount,
        coalesce(traits.is_support_escalated, false) as is_support_escalated,
        carts.last_cart_at,
        carts.cart_value as cart_value_since_last_order
    from people
    left join order_facts on people.person_id = order_facts.person_id
    left join refund_facts on people.person_id = refund_facts.person_id
    left join support_facts on people.person_id = support_facts.person_id
    left join traits on people.person_id = traits.person_id
    left join carts on people.person_id = carts.person_id
    left join emails on people.person_id = emails.person_id

),

facts as (

    select
        *,
        gross_revenue - refunds as net_revenue,
        -- an order at the same instant as the cart event closes the cart
        coalesce(
            last_cart_at is not null
            and (last_order_at is null or last_order_at < last_cart_at),
            false
        ) as is_cart_open
    from joined

),

final as (

    select
        person_id,
        email_sha256,
        order_count,
        first_order_at,
        last_order_at,
        gross_revenue,
        refunds,
        net_revenue,
        gross_revenue / nullif(order_count, 0) as aov,
        last_cart_at,
        is_cart_open,
        case when is_cart_open then cart_value_since_last_order end as cart_value,
        last_offer_order_at,
        last_refunded_at,
        last_support_escalation_at,
        is_no_discount,
        is_support_escalated,
        -- the build that computed the row: T, and the last staged message it had seen
        {{ as_of() }} as computed_as_of,
        (select max(staging_batches.staged_at) from staging_batches) as staged_through
    from facts

)

select * from final
