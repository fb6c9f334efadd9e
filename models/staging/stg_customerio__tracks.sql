{{
    config(
        materialized='incremental',
        unique_key='message_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

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
        -- the JSON object text, or null when unreadable; parsed downstream for mapped events only
        {{ json_object_text('properties') }} as properties_json,

        ---------- timestamps
        {{ parse_utc_timestamp('"timestamp"') }} as sent_at,
        {{ parse_utc_timestamp('received_at') }} as received_at

    from source

),

timed as (

    select
        message_id,
        user_id,
        anonymous_id,
        event_name,
        properties_json,
        coalesce(sent_at, received_at) as event_at,
        received_at
    from renamed

),

-- Incremental builds read only the messages received since the last build, less a lookback
-- for late-loaded files; the copies already staged of those messages compete again, so the
-- earliest delivery still wins.
new_deliveries as (

    select * from timed
    {% if is_incremental() %}
        where received_at > (
            select
                {{ dbt.dateadd('hour', -var('staging_lookback_hours'), 'max(received_at)') }}
            from {{ this }}
        )
    {% endif %}

),

candidates as (

    select * from new_deliveries
    {% if is_incremental() %}
        union all
        select
            staged.message_id,
            staged.user_id,
            staged.anonymous_id,
            staged.event_name,
            staged.properties_json,
            staged.event_at,
            staged.received_at
        from {{ this }} as staged
        where staged.message_id in (select new_deliveries.message_id from new_deliveries)
    {% endif %}

),

-- Pipelines delivers at least once: keep the earliest delivery of each message.
deduplicated as (

    select * from candidates
    qualify row_number() over (
        partition by message_id order by received_at, event_at
    ) = 1

)

select * from deduplicated
