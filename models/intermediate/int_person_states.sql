{#-
    Each person's LTV tier, whether each audience's rule holds (rule_<state>, one column per
    rule in models/audiences/rules, enabled or not), and the retention state at T: the first
    enabled exclusive rule that holds, in the registry's priority order
    (models/audiences/_audiences.yml), so states are mutually exclusive by construction.
    Recomputed for everyone every build: windows move with T, thresholds are vars.
-#}
{%- set rules = audience_rules() -%}
{%- set exclusive = exclusive_states() -%}

with

facts as (

    select * from {{ ref('int_person_facts') }}

),

tiered as (

    select
        *,
        case
            when net_revenue >= {{ var('ltv_high_threshold') }} then 'high'
            when net_revenue >= {{ var('ltv_mid_threshold') }} then 'mid'
            when net_revenue > 0 then 'low'
            else 'none'
        end as ltv_tier,
        {{ as_of() }} as as_of
    from facts

),

rules as (

    select
        {%- for state, rule in rules %}
            coalesce({{ rule }}, false) as rule_{{ state }},
        {%- endfor %}
        *
    from tiered

),

states as (

    select
        *,
        {%- if exclusive %}
            case
                {%- for state in exclusive %}
                    when rule_{{ state }} then '{{ state }}'
                {%- endfor %}
            end as state,
            case
                {%- for state in exclusive %}
                    when rule_{{ state }} then {{ loop.index }}
                {%- endfor %}
            end as state_priority
        {%- else %}
            cast(null as varchar) as state,
            cast(null as integer) as state_priority
        {%- endif %}
    from rules

)

-- the columns: the facts, ltv_tier, as_of, one rule_<state> per rule file, state, state_priority
select * from states  -- noqa: AM04
