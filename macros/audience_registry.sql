{#-
    The audience registry. An audience is two things an analyst writes:
    - its rule: models/audiences/rules/<name>.sql, a macro named like the model holding a condition
      over the per-person facts, then `{{ audience_members() }}` (the file is read both as
      the audience's model and, through macro-paths, as the rule's macro);
    - its entry in models/audiences/_audiences.yml: meta.audience (family, priority,
      enabled) and meta.bing (list name, role, membership duration, removal guard), plus its
      line in the bing_customer_match exposure.
    Everything else reads them: int_person_states (one rule_<state> column per rule, the
    state in priority order), int_email_audiences, the marts, their tests, and the sync
    (through dbt's manifest). A wrong entry fails the build here, naming the entry.
-#}

{#-
    Every rule, as (state, SQL condition), from the macros of the audience files, found in
    dbt's context rather than its graph, so they are there in unit tests too. A rule naming
    anything but a per-person fact fails here, naming the audience: the facts are the
    columns of int_person_facts as built, plus ltv_tier and as_of.
-#}
{% macro audience_rules() -%}
    {%- set rules = [] -%}
    {%- set facts = _audience_facts() -%}
    {%- for name in context.keys() | sort if name.startswith('audience_') -%}
        {%- set candidate = context[name] -%}
        {%- if candidate.macro is defined and candidate.macro.original_file_path.startswith('models/') -%}
            {%- if facts -%}
                {%- do _audience_rule_check(name, candidate.macro, facts) -%}
            {%- endif -%}
            {%- do rules.append((name[9:], candidate() | trim)) -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(rules) -}}
{%- endmacro %}


{% macro _audience_facts() -%}
    {%- if not execute -%}
        {{- return([]) -}}
    {%- endif -%}
    {#- beside this model; in unit tests (no `this`) in the target's schema -#}
    {%- set here = this if this is not none else target -%}
    {%- set relation = adapter.get_relation(database=here.database, schema=here.schema, identifier='int_person_facts') -%}
    {%- if relation is none -%}
        {{- return([]) -}}
    {%- endif -%}
    {%- set facts = ['ltv_tier', 'as_of'] -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
        {%- do facts.append(column.name | lower) -%}
    {%- endfor -%}
    {{- return(facts) -}}
{%- endmacro %}


{% macro _audience_rule_check(name, rule_macro, facts) -%}
    {#- no backslash escapes: Jinja string literals would decode them -#}
    {%- set written = modules.re.sub("[{][{].*?[}][}]|[{]%.*?%[}]|[{]#.*?#[}]|'[^']*'|--[^\n]*", " ", rule_macro.macro_sql, flags=modules.re.S) -%}
    {%- for word in modules.re.findall("(?<![A-Za-z0-9_.])[A-Za-z_][A-Za-z0-9_]*(?![A-Za-z0-9_]*[ \t\n]*[(])", written) -%}
        {%- if word | lower not in facts and word | lower not in _audience_sql_words() -%}
            {{ exceptions.raise_compiler_error("audience " ~ name ~ " (" ~ rule_macro.original_file_path ~ "): its rule uses `" ~ word ~ "`, which is not a per-person fact; the facts are: " ~ facts | sort | join(', ')) }}
        {%- endif -%}
    {%- endfor -%}
{%- endmacro %}


{#-
    The registry's entries (dicts, checked): the exclusive family by priority, then the
    suppression lists by name. Empty at parse time (no graph yet) and in unit tests, which
    set it through `overrides: macros: {audience_registry: [...]}`.
-#}
{% macro audience_registry() -%}
    {%- if not execute or not graph.nodes -%}
        {{- return([]) -}}
    {%- endif -%}
    {%- set entries = [] -%}
    {%- set exposed = _audiences_exposed() -%}
    {%- for node in graph.nodes.values() | sort(attribute='name')
        if node.resource_type == 'model'
        and (node.config.meta.get('audience') is not none or node.config.meta.get('bing') is not none) -%}
        {%- do entries.append(_audience_entry(node, exposed)) -%}
    {%- endfor -%}
    {%- do _audience_registry_check_unique(entries) -%}
    {%- set exclusive = entries | selectattr('family', 'equalto', 'exclusive') | sort(attribute='priority') | list -%}
    {%- set suppression = entries | selectattr('family', 'equalto', 'suppression') | list -%}
    {{- return(exclusive + suppression) -}}
{%- endmacro %}


{#- The models the bing_customer_match exposure depends on. -#}
{% macro _audiences_exposed() -%}
    {%- set exposed = [] -%}
    {%- for exposure in graph.exposures.values() if exposure.name == 'bing_customer_match' -%}
        {%- for unique_id in exposure.depends_on.nodes -%}
            {%- do exposed.append(unique_id.split('.')[-1]) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{- return(exposed) -}}
{%- endmacro %}


{% macro _audience_entry(node, exposed) -%}
    {%- set name = node.name -%}
    {%- set file = (node.patch_path or node.original_file_path).split('://')[-1] -%}
    {%- set where = "audience " ~ name ~ " (" ~ file ~ ")" -%}
    {%- set meta = node.config.meta.get('audience') -%}
    {%- set bing = node.config.meta.get('bing') -%}
    {%- if meta is not mapping -%}
        {{ exceptions.raise_compiler_error(where ~ ": needs a meta.audience block (family, priority, enabled) beside meta.bing") }}
    {%- endif -%}
    {%- if bing is not mapping or not bing.get('list_name') -%}
        {{ exceptions.raise_compiler_error(where ~ ": needs a meta.bing block with list_name and role") }}
    {%- endif -%}
    {%- if not name.startswith('audience_') -%}
        {{ exceptions.raise_compiler_error(where ~ ": an audience model's name starts with audience_") }}
    {%- endif -%}
    {%- set family = meta.get('family') -%}
    {%- set priority = meta.get('priority') -%}
    {%- set enabled = meta.get('enabled', true) -%}
    {%- if family not in ('exclusive', 'suppression') -%}
        {{ exceptions.raise_compiler_error(where ~ ": family is '" ~ family ~ "'; use exclusive (one list per person, by priority) or suppression (an exclusion list beside them)") }}
    {%- endif -%}
    {%- if family == 'exclusive' and (priority is not number or priority is boolean or priority != priority | int) -%}
        {{ exceptions.raise_compiler_error(where ~ ": an exclusive audience needs an integer priority (10 wins over 20), got '" ~ priority ~ "'") }}
    {%- endif -%}
    {%- if family == 'suppression' and priority is not none -%}
        {{ exceptions.raise_compiler_error(where ~ ": a suppression list is not exclusive, so it has no priority (remove priority: " ~ priority ~ ")") }}
    {%- endif -%}
    {%- if family == 'suppression' and bing.get('role') != 'exclude' -%}
        {{ exceptions.raise_compiler_error(where ~ ": a suppression list has role exclude (meta.bing.role is '" ~ bing.get('role') ~ "')") }}
    {%- endif -%}
    {%- if enabled is not boolean -%}
        {{ exceptions.raise_compiler_error(where ~ ": enabled is '" ~ enabled ~ "'; use true or false") }}
    {%- endif -%}
    {%- if name not in exposed -%}
        {{ exceptions.raise_compiler_error(where ~ ": add `- ref('" ~ name ~ "')` to the depends_on of exposure bing_customer_match (models/audiences/_audiences.yml)") }}
    {%- endif -%}
    {%- set rule_macro = context.get(name) -%}
    {%- if rule_macro is none or rule_macro.macro is not defined -%}
        {{ exceptions.raise_compiler_error(where ~ ": " ~ node.original_file_path ~ " defines no rule: it needs {% macro " ~ name ~ "() %} <condition> {% endmacro %}") }}
    {%- endif -%}
    {%- if rule_macro.macro.original_file_path != node.original_file_path -%}
        {{ exceptions.raise_compiler_error(where ~ ": its rule macro is in " ~ rule_macro.macro.original_file_path ~ ", not in the model's own file " ~ node.original_file_path) }}
    {%- endif -%}
    {%- if rule_macro.macro.macro_sql not in node.raw_code -%}
        {{ exceptions.raise_compiler_error(where ~ ": the rule dbt holds differs from " ~ node.original_file_path ~ " (a partial-parse cache that missed an edit): run dbt again with --no-partial-parse") }}
    {%- endif -%}
    {%- if 'audience_members()' not in node.raw_code -%}
        {{ exceptions.raise_compiler_error(where ~ ": " ~ node.original_file_path ~ " must end with {{ audience_members() }}, the columns the sync reads") }}
    {%- endif -%}
    {{- return({
        'name': name,
        'state': name[9:],
        'family': family,
        'priority': priority,
        'enabled': enabled,
        'list_name': bing.get('list_name'),
        'where': where,
    }) -}}
{%- endmacro %}


{% macro _audience_registry_check_unique(entries) -%}
    {%- set seen = {} -%}
    {%- for entry in entries -%}
        {%- for key, value in [('priority', entry.priority), ('Bing list name', entry.list_name | lower)] if value is not none -%}
            {%- set other = seen.get(key ~ ':' ~ value) -%}
            {%- if other is not none -%}
                {{ exceptions.raise_compiler_error(entry.where ~ ": " ~ key ~ " " ~ value ~ " is also that of " ~ other ~ "; each audience has its own") }}
            {%- endif -%}
            {%- do seen.update({key ~ ':' ~ value: entry.name}) -%}
        {%- endfor -%}
    {%- endfor -%}
{%- endmacro %}


{#- SQL words a rule may use besides the facts (functions are recognised by their "("). -#}
{% macro _audience_sql_words() -%}
    {{- return([
        'and', 'or', 'not', 'is', 'null', 'true', 'false', 'between', 'in', 'like', 'ilike',
        'case', 'when', 'then', 'else', 'end', 'as', 'distinct', 'interval',
        'second', 'minute', 'hour', 'day', 'week', 'month', 'year',
        'seconds', 'minutes', 'hours', 'days', 'weeks', 'months', 'years',
        'varchar', 'integer', 'bigint', 'double', 'numeric', 'decimal', 'boolean', 'timestamp', 'date',
    ]) -}}
{%- endmacro %}


{#- The states of the enabled exclusive audiences, highest priority first. (Unit tests
    override these two by name, so each stays its own macro.) -#}
{% macro exclusive_states() -%}
    {{- return(_enabled_states('exclusive')) -}}
{%- endmacro %}


{#- The states of the enabled suppression lists. -#}
{% macro suppression_states() -%}
    {{- return(_enabled_states('suppression')) -}}
{%- endmacro %}


{% macro _enabled_states(family) -%}
    {%- set states = [] -%}
    {%- for entry in audience_registry() if entry.family == family and entry.enabled -%}
        {%- do states.append(entry.state) -%}
    {%- endfor -%}
    {{- return(states) -}}
{%- endmacro %}


{#- T − amount unit (the spec's "T − 7 d"), for rules: `last_order_at > {{ t_minus(7, 'day') }}`. -#}
{% macro t_minus(amount, unit) -%}
    {{- dbt.dateadd(unit, -amount, as_of()) -}}
{%- endmacro %}


{#-
    The body of every audience_<name> model: one row per email_sha256 in the audience, in
    the columns the sync reads (contract-enforced in the registry). A disabled audience's
    table is built empty and the sync leaves its Bing list alone (docs/audiences.md).
-#}
{% macro audience_members() -%}
with

members as (

    select * from {{ ref('int_email_audiences') }}
    where audience = '{{ model.name }}'

),

final as (

    select
        cast(email_sha256 as varchar) as email_sha256,
        cast(person_id as varchar) as person_id,
        cast(ltv_tier as varchar) as ltv_tier,
        cast(as_of as {{ dbt.type_timestamp() }}) as as_of
    from members

)

select * from final
{%- endmacro %}
