{#-
    Each person's LTV tier and retention state at T, recomputed for everyone every build
    (windows move with T, thresholds are vars): the first rule that holds wins, so states are
    mutually exclusive by construction. The rules are written once, here; their order is
    the priority. Windows and thresholds are vars (d = days of 24 h).
-#}
{%- set as_of = as_of() -%}
{%- set cart_is_recent -%}
    is_cart_open and last_cart_at > {{ dbt.dateadd('hour', -var('cart_window_hours'), as_of) }}
{%- endset -%}
{%- set state_rules = [
    ('recent_purchaser_0_7d',
        "last_order_at > " ~ dbt.dateadd('day', -var('recent_purchase_days'), as_of)),
    ('cart_abandon_high_aov_0_1d',
        cart_is_recent ~ " and cart_value >= " ~ var('high_aov_threshold')),
    ('cart_abandon_0_1d',
        cart_is_recent),
    ('purchased_once_21_45d',
        "order_count = 1 and last_order_at between "
        ~ dbt.dateadd('day', -var('once_max_days'), as_of) ~ " and "
        ~ dbt.dateadd('day', -var('once_min_days'), as_of)),
    ('lapsed_90d_plus',
        "order_count >= 1 and last_order_at <= " ~ dbt.dateadd('day', -var('lapsed_days'), as_of)),
    ('ltv_high',
        "ltv_tier = 'high'"),
] -%}

with

facts as (

    select * from {{ ref('int_person_facts') }}

),

tiered as (

    select
        *,
        case
            when net_revenue >= {{ var('ltv_high_threshold') }} then 'high'
            when net_revenue >= {{ var('ltv_mid_threshold') }} then 'mid'
            when net_revenue > 0 then 'low'
            else 'none'
        end as ltv_tier
    from facts

),

states as (

    select
        person_id,
        email_sha256,
        order_count,
        first_order_at,
        last_order_at,
        gross_revenue,
        refunds,
        net_revenue,
        aov,
        ltv_tier,
        last_cart_at,
        is_cart_open,
        cart_value,
        {{ as_of }} as as_of,
        case
            {%- for state, rule in state_rules %}
                when {{ rule }} then '{{ state }}'
            {%- endfor %}
        end as state,
        case
            {%- for state, rule in state_rules %}
                when {{ rule }} then {{ loop.index }}
            {%- endfor %}
        end as state_priority
    from tiered

)

select * from states
