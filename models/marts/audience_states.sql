with

states as (

    select * from {{ ref('int_person_states') }}
    where state is not null

),

final as (

    select
        cast(person_id as varchar) as person_id,
        cast(state as varchar) as state,
        cast(state_priority as integer) as state_priority,
        cast(email_sha256 as varchar) as email_sha256,
        cast(ltv_tier as varchar) as ltv_tier,
        cast(order_count as integer) as order_count,
        cast(net_revenue as {{ dbt.type_numeric() }}) as net_revenue,
        cast(aov as {{ dbt.type_numeric() }}) as aov,
        cast(last_order_at as {{ dbt.type_timestamp() }}) as last_order_at,
        cast(last_cart_at as {{ dbt.type_timestamp() }}) as last_cart_at,
        cast(cart_value as {{ dbt.type_numeric() }}) as cart_value,
        cast(as_of as {{ dbt.type_timestamp() }}) as as_of
    from states

)

select * from final
