with

source as (

    select * from {{ customerio_source('tracks') }}

),

renamed as (

    select

        ---------- ids
        cast(id as varchar) as message_id,
        nullif(trim(cast(user_id as varchar)), '') as user_id,
        nullif(trim(cast(anonymous_id as varchar)), '') as anonymous_id,

        ---------- strings
        {{ normalize_event_name('event_text', 'event') }} as event_name,
        {{ json_object_text('properties') }} as properties_json,

        ---------- timestamps
        {{ parse_utc_timestamp('"timestamp"') }} as sent_at,
        {{ parse_utc_timestamp('received_at') }} as received_at

    from source

),

parsed as (

    select

        message_id,
        user_id,
        anonymous_id,
        event_name,

        ---------- properties (null when missing or unreadable)
        {{ json_text('properties_json', 'order_id') }} as order_id,
        {{ json_number('properties_json', 'price') }} as price,
        {{ json_number('properties_json', 'quantity') }} as quantity,
        {{ json_number('properties_json', 'total') }} as total,
        {{ json_number('properties_json', 'revenue') }} as revenue,
        {{ json_number('properties_json', 'value') }} as value,  -- noqa: RF04
        {{ json_number('properties_json', 'subtotal') }} as subtotal,

        ---------- timestamps
        coalesce(sent_at, received_at) as event_at,
        received_at

    from renamed

),

-- Pipelines delivers at least once: keep the earliest delivery of each message.
deduplicated as (

    select * from parsed
    qualify row_number() over (
        partition by message_id order by received_at, event_at
    ) = 1

)

select * from deduplicated
