{%- set staged_columns = [
    'message_id',
    'user_id',
    'anonymous_id',
    'event_name',
    'properties_json',
    'event_at',
    'received_at',
] -%}
{{ customerio_demo_seed_dependency('tracks') }}

with

source as (

    {%- set source_relation = source('customerio', 'tracks') %}
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

{{ earliest_deliveries('timed', staged_columns, 'event_at') }}

select * from final
