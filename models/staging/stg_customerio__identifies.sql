{%- set staged_columns = [
    'message_id',
    'user_id',
    'anonymous_id',
    'has_email',
    'email_sha256',
    'is_no_discount',
    'is_support_escalated',
    'identified_at',
    'received_at',
] -%}
{#- trait_values[i] below is traits[i - 1]; the boolean traits' names are vars -#}
{%- set traits = ['email', var('no_discount_trait'), var('support_escalation_trait')] -%}
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

        ---------- traits: the email, and the booleans the suppression lists read
        {{ json_fields(json_object_text('traits'), traits) }} as trait_values,

        ---------- timestamps
        {{ parse_utc_timestamp('"timestamp"') }} as sent_at,
        {{ parse_utc_timestamp('received_at') }} as received_at

    from source

),

traits_read as (

    select
        message_id,
        user_id,
        anonymous_id,
        {{ json_value_text('trait_values[1]') }} as email_trait,
        {{ json_value_boolean('trait_values[2]') }} as is_no_discount,
        {{ json_value_boolean('trait_values[3]') }} as is_support_escalated,
        sent_at,
        received_at
    from renamed

),

-- The raw email is normalised and hashed here and never leaves the model: downstream sees
-- whether the row carried an email, and its hash.
hashed as (

    select
        message_id,
        user_id,
        anonymous_id,

        ---------- booleans (the traits: null when this identify does not state them)
        email_trait is not null as has_email,
        is_no_discount,
        is_support_escalated,

        ---------- hashed identifiers (null: no valid email)
        {{ email_sha256('email_trait') }} as email_sha256,

        ---------- timestamps
        coalesce(sent_at, received_at) as identified_at,
        received_at

    from traits_read

),

{{ earliest_deliveries('hashed', staged_columns, 'identified_at') }}

select * from final
