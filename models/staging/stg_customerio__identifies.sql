{%- set staged_columns = [
    'message_id',
    'user_id',
    'anonymous_id',
    'has_email',
    'email_sha256',
    'identified_at',
    'received_at',
] -%}
{{ customerio_demo_seed_dependency('identifies') }}

with

source as (

    {%- set source_relation = source('customerio', 'identifies') %}
    select * from {{ source_relation }}
    {{ received_since_last_build(source_relation) }}

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

{{ earliest_deliveries('hashed', staged_columns, 'identified_at') }}

select * from final
