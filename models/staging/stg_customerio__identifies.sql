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

    select * from {{ customerio_source('identifies') }}

),

renamed as (

    select

        ---------- ids
        cast(id as varchar) as message_id,
        nullif(trim(cast(user_id as varchar)), '') as user_id,
        nullif(trim(cast(anonymous_id as varchar)), '') as anonymous_id,

        ---------- strings
        {{ json_text(json_object_text('traits'), 'email') }} as email_trait,

        ---------- timestamps
        {{ parse_utc_timestamp('"timestamp"') }} as sent_at,
        {{ parse_utc_timestamp('received_at') }} as received_at

    from source

),

-- The raw email is normalised and hashed here and never leaves the model: downstream sees
-- whether the row carried an email, and its hash.
hashed as (

    select
        message_id,
        user_id,
        anonymous_id,

        ---------- booleans
        email_trait is not null as has_email,

        ---------- hashed identifiers (null: no valid email)
        {{ email_sha256('email_trait') }} as email_sha256,

        ---------- timestamps
        coalesce(sent_at, received_at) as identified_at,
        received_at

    from renamed

),

-- Incremental builds read only the messages received since the last build, less a lookback
-- for late-loaded files; the copies already staged of those messages compete again, so the
-- earliest delivery still wins.
new_deliveries as (

    select * from hashed
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
            staged.has_email,
            staged.email_sha256,
            staged.identified_at,
            staged.received_at
        from {{ this }} as staged
        where staged.message_id in (select new_deliveries.message_id from new_deliveries)
    {% endif %}

),

-- Pipelines delivers at least once: keep the earliest delivery of each message.
deduplicated as (

    select * from candidates
    qualify row_number() over (
        partition by message_id order by received_at, identified_at
    ) = 1

)

select * from deduplicated
