{#-
    No email_sha256 is in two Bing lists. The audiences are found in the graph (every model
    whose meta has a `bing` block). dbt needs each one declared below as well; for a new
    audience it fails the parse with the exact line to add.
-#}
-- depends_on: {{ ref('audience_recent_purchaser_0_7d') }}
-- depends_on: {{ ref('audience_cart_abandon_high_aov_0_1d') }}
-- depends_on: {{ ref('audience_cart_abandon_0_1d') }}
-- depends_on: {{ ref('audience_purchased_once_21_45d') }}
-- depends_on: {{ ref('audience_lapsed_90d_plus') }}
-- depends_on: {{ ref('audience_ltv_high') }}
{% set audiences = [] -%}
{%- if execute -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'model' and node.config.meta.get('bing') -%}
            {%- do audiences.append(node.name) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif %}

with

memberships as (

    {% for audience in audiences | sort -%}
        select email_sha256, '{{ audience }}' as audience from {{ ref(audience) }}
        {% if not loop.last %}union all{% endif %}
    {% else -%}
        select cast(null as varchar) as email_sha256, cast(null as varchar) as audience
        where false
    {%- endfor %}

)

select
    email_sha256,
    count(*) as audiences
from memberships
group by email_sha256
having count(*) > 1
