{#-
    How much of each enabled audience can reach Microsoft, per identifier (email today): the
    people its rule puts in it, those of them with a usable identifier, the distinct hashes
    its table sends (people sharing one count once; an exclusive hash goes to its best state
    only), and the share of people covered. A list whose people lack identifiers syncs but
    cannot match: `sync status` warns below var coverage_warning_share.
-#}
{%- set audiences = exclusive_states() + suppression_states() -%}

with

people as (

    select * from {{ ref('int_person_audiences') }}

),

memberships as (

    select * from {{ ref('int_email_audiences') }}

),

-- every enabled audience, so an empty one shows with zeros
audiences as (

    {%- for state in audiences %}
        select 'audience_{{ state }}' as audience
        {{ 'union all' if not loop.last }}
    {%- else %}
        select cast(null as varchar) as audience where false
    {%- endfor %}

),

people_counts as (

    select
        audience,
        count(*) as people,
        count(email_sha256) as people_with_identifier
    from people
    group by audience

),

hash_counts as (

    select
        audience,
        count(*) as hashes
    from memberships
    group by audience

),

final as (

    select
        cast(audiences.audience as varchar) as audience,
        cast('email' as varchar) as identifier,
        cast(coalesce(people_counts.people, 0) as bigint) as people,
        cast(coalesce(people_counts.people_with_identifier, 0) as bigint)
            as people_with_identifier,
        cast(coalesce(hash_counts.hashes, 0) as bigint) as hashes,
        cast(
            1.0 * people_counts.people_with_identifier / nullif(people_counts.people, 0)
            as {{ dbt.type_numeric() }}
        ) as coverage_share,
        cast({{ var('coverage_warning_share') }} as {{ dbt.type_numeric() }}) as warning_share,
        cast({{ as_of() }} as {{ dbt.type_timestamp() }}) as as_of
    from audiences
    left join people_counts on audiences.audience = people_counts.audience
    left join hash_counts on audiences.audience = hash_counts.audience

)

select * from final
