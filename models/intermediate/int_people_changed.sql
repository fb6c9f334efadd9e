{#-
    The people whose facts may differ from those last written to the per-person models
    (int_person_emails, int_person_traits, int_events_identified, int_orders, int_refunds,
    int_person_carts, int_person_facts), so an incremental build recomputes only them. A
    person changes when a message naming them was staged since that build, or happened in
    (previous T, T] (T moves forward every build); for an anonymous_id in such a message,
    every user it was ever linked to changes (its events may move from one to the other).
    When T moves back, or int_person_facts is missing while other per-person models exist,
    everyone changes; when none of them exists yet (a first build) the set is empty, as they
    all build in full. (A late-loaded earlier delivery that replaces a staged copy is the same
    message, so it names the same people.)

    The previous build is read from int_person_facts, the end of the chain, without ref():
    it runs after this model. A build that fails before reaching it leaves its watermark
    where it was, so the next build recomputes those people again (the recompute is
    idempotent).
-#}
{%- set per_person = [
    'int_person_emails', 'int_person_traits', 'int_events_identified', 'int_orders',
    'int_refunds', 'int_person_carts', 'int_person_facts',
] -%}
{%- set built = [] -%}
{%- for name in per_person -%}
    {%- if adapter.get_relation(database=this.database, schema=this.schema, identifier=name) -%}
        {%- do built.append(name) -%}
    {%- endif -%}
{%- endfor -%}
{%- set facts = adapter.get_relation(
    database=this.database, schema=this.schema, identifier='int_person_facts'
) -%}
{%- set as_of = as_of() -%}

with

last_build as (

    {%- if facts is not none %}
        select
            max(staged_through) as staged_through,
            max(computed_as_of) as computed_as_of
        from {{ facts }}
    {%- else %}
        select
            cast(null as {{ dbt.type_timestamp() }}) as staged_through,
            cast(null as {{ dbt.type_timestamp() }}) as computed_as_of
    {%- endif %}

),

messages as (

    select
        user_id,
        anonymous_id,
        -- a track names its device's person only when it has no user_id
        user_id is null as names_device,
        staged_at,
        event_at as happened_at
    from {{ ref('stg_customerio__tracks') }}
    union all
    select
        user_id,
        anonymous_id,
        true as names_device,
        staged_at,
        identified_at as happened_at
    from {{ ref('stg_customerio__identifies') }}

),

messages_changed as (

    select
        messages.user_id,
        messages.anonymous_id,
        messages.names_device
    from messages
    cross join last_build
    where
        last_build.staged_through is null
        or last_build.computed_as_of > {{ as_of }}
        or messages.staged_at > last_build.staged_through
        or (
            messages.happened_at > last_build.computed_as_of
            and messages.happened_at <= {{ as_of }}
        )

),

anonymous_ids_changed as (

    select distinct anonymous_id from messages_changed
    where names_device and anonymous_id is not null

),

people as (

    select user_id as person_id from messages_changed
    where user_id is not null
    union
    select identifies.user_id as person_id
    from {{ ref('stg_customerio__identifies') }} as identifies
    inner join anonymous_ids_changed
        on identifies.anonymous_id = anonymous_ids_changed.anonymous_id
    where identifies.user_id is not null

),

final as (

    -- nothing built yet: every per-person model builds in full, none reads this set
    select person_id from people
    where {{ 'false' if built | length == 0 else 'true' }}

)

select * from final
