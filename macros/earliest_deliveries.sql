{#-
    The CTEs both staging models end with: `new_deliveries` (on incremental builds only the
    messages received since the last build, less `staging_lookback_hours` for late-loaded
    files), `candidates` (those plus the copies already staged of the same messages, so they
    compete again) and `deduplicated` (Pipelines delivers at least once: the earliest
    delivery of each message wins, ties broken by `tie_breaker`). `upstream` is the CTE with
    exactly `columns`, among them message_id and received_at.
-#}
{% macro earliest_deliveries(upstream, columns, tie_breaker) -%}
new_deliveries as (

    select * from {{ upstream }}
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
            {%- for column in columns %}
            staged.{{ column }}{{ "," if not loop.last }}
            {%- endfor %}
        from {{ this }} as staged
        where staged.message_id in (select new_deliveries.message_id from new_deliveries)
    {% endif %}

),

deduplicated as (

    select * from candidates
    qualify row_number() over (
        partition by message_id order by received_at, {{ tie_breaker }}
    ) = 1

)
{%- endmacro %}
