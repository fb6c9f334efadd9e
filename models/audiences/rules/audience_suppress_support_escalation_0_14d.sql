{#-
    In a support escalation: a support_escalation event (customerio_event_kinds) in the last
    support_escalation_days (14) days, or the trait named by var support_escalation_trait.
-#}
{% macro audience_suppress_support_escalation_0_14d() -%}
    last_support_escalation_at > {{ t_minus(var('support_escalation_days'), 'day') }}
    or is_support_escalated
{%- endmacro %}

{{ audience_members() }}
