{#-
    The commerce events that count at T: mapped to a canonical kind through the
    customerio_event_kinds seed (unmapped names are dropped), happened by T, and carried
    by a person (user_id, else the user_id its anonymous_id resolves to), with the
    properties the audiences read parsed from their JSON (once per event, mapped events only).
-#}
{%- set properties = [
    'order_id', 'price', 'quantity', 'total', 'revenue', 'value', 'subtotal', 'coupon', 'discount',
] -%}
{#- property_values[i] below is properties[i - 1] -#}
{#-
    Incremental builds first narrow the staged events to those that can belong to a changed
    person, so only they are joined and parsed (the exact filter follows once resolved).
-#}
{%- set may_belong_to_changed -%}
    {%- if is_incremental() -%}
        (
            user_id in (select changed.person_id from {{ ref('int_people_changed') }} as changed)
            or anonymous_id in (
                select links.anonymous_id
                from {{ ref('int_anonymous_ids_resolved') }} as links
                inner join {{ ref('int_people_changed') }} as changed
                    on links.user_id = changed.person_id
            )
        )
    {%- else -%}
        true
    {%- endif -%}
{%- endset -%}
with

events as (

    select * from {{ ref('stg_customerio__tracks') }}
    where
        event_at <= {{ as_of() }}
        and {{ may_belong_to_changed }}

),

event_kinds as (

    select * from {{ ref('customerio_event_kinds') }}

),

anonymous_ids as (

    select * from {{ ref('int_anonymous_ids_resolved') }}

),

identified as (

    select
        events.message_id,
        coalesce(events.user_id, anonymous_ids.user_id) as person_id,
        event_kinds.event_kind,
        {{ json_fields('events.properties_json', properties) }} as property_values,
        events.event_at,
        events.received_at
    from events
    inner join event_kinds
        on events.event_name = event_kinds.event_name
    left join anonymous_ids
        on
            events.user_id is null
            and events.anonymous_id = anonymous_ids.anonymous_id

),

parsed as (

    select
        message_id,
        person_id,
        event_kind,
        {{ json_value_text('property_values[1]') }} as order_id,
        {{ json_value_number('property_values[2]') }} as price,
        {{ json_value_number('property_values[3]') }} as quantity,
        {{ json_value_number('property_values[4]') }} as total,
        {{ json_value_number('property_values[5]') }} as revenue,
        {{ json_value_number('property_values[6]') }} as value,  -- noqa: RF04
        {{ json_value_number('property_values[7]') }} as subtotal,
        {{ json_value_text('property_values[8]') }} as coupon,
        {{ json_value_number('property_values[9]') }} as discount,
        event_at,
        received_at
    from identified
    where
        person_id is not null
        and {{ is_person_changed('person_id') }}

)

select * from parsed
