{#-
    Incremental builds of the staging models read only the source rows received since the
    last build, less `staging_lookback_hours` for late-loaded files. The filter goes on the
    raw source rows, before any parsing, so an hourly build parses the new hour only.
-#}
{% macro received_since_last_build() -%}
    {%- if is_incremental() -%}
        where {{ parse_utc_timestamp('received_at') }} > (
            select
                {{ dbt.dateadd('hour', -var('staging_lookback_hours'), 'max(received_at)') }}
            from {{ this }}
        )
    {%- endif -%}
{%- endmacro %}


{#-
    The CTEs both staging models end with: `candidates` (the new deliveries in `upstream`
    plus, on incremental builds, the copies already staged of the same messages, so they
    compete again) and `deduplicated` (Pipelines delivers at least once: the earliest
    delivery of each message wins, ties broken by `tie_breaker`). `upstream` is the CTE with
    exactly `columns`, among them message_id and received_at.
-#}
{% macro earliest_deliveries(upstream, columns, tie_breaker) -%}
candidates as (

    select * from {{ upstream }}
    {% if is_incremental() %}
        union all
        select
            {%- for column in columns %}
            staged.{{ column }}{{ "," if not loop.last }}
            {%- endfor %}
        from {{ this }} as staged
        where staged.message_id in (select new.message_id from {{ upstream }} as new)
    {% endif %}

),

deduplicated as (

    select * from candidates
    qualify row_number() over (
        partition by message_id order by received_at, {{ tie_breaker }}
    ) = 1

)
{%- endmacro %}
