{#-
    An audience table holds exactly its memberships in int_email_audiences (where each hash
    is in one exclusive audience at most): so no hash is in two exclusive lists, and a table
    written by hand instead of `{{ audience_members() }}` fails.
-#}
{% test matches_its_memberships(model, column_name) %}
with

expected as (

    select email_sha256 from {{ ref('int_email_audiences') }}
    where audience = '{{ model.identifier }}'

),

actual as (

    select {{ column_name }} as email_sha256 from {{ model }}

),

missing as (

    select email_sha256 from expected
    except
    select email_sha256 from actual

),

extra as (

    select email_sha256 from actual
    except
    select email_sha256 from expected

)

select email_sha256, 'missing from the table' as problem from missing
union all
select email_sha256, 'not a member' as problem from extra
{% endtest %}
