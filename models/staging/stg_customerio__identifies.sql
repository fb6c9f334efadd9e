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
        {{ json_object_text('traits') }} as traits_json,

        ---------- timestamps
        {{ parse_utc_timestamp('"timestamp"') }} as sent_at,
        {{ parse_utc_timestamp('received_at') }} as received_at

    from source

),

-- The raw email is read, normalised and hashed inside this one expression and never
-- leaves the model: downstream sees whether the row carried an email, and its hash.
hashed as (

    select

        message_id,
        user_id,
        anonymous_id,

        ---------- booleans
        {{ json_text('traits_json', 'email') }} is not null as has_email,

        ---------- hashed identifiers (null: no valid email)
        {{ email_sha256(json_text('traits_json', 'email')) }} as email_sha256,

        ---------- timestamps
        coalesce(sent_at, received_at) as identified_at,
        received_at

    from renamed

),

-- Pipelines delivers at least once: keep the earliest delivery of each message.
deduplicated as (

    select * from hashed
    qualify row_number() over (
        partition by message_id order by received_at, identified_at
    ) = 1

)

select * from deduplicated
