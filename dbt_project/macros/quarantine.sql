{#- Quarantine helpers. A rule is (code, condition, blocking). reasons_columns() turns a list of
    rules into:
      blocking_reason: the first blocking rule (list order = priority) the row breaks, or NULL;
      reasons:         every rule the row breaks, comma-separated in list order ('' if none).
    Staging keeps rows whose blocking_reason is NULL; quarantine lists rows whose reasons <> ''. -#}
{% macro reasons_columns(rules) -%}
    case
        {%- for rule in rules if rule.blocking %}
        when {{ rule.condition }} then '{{ rule.code }}'
        {%- endfor %}
    end as blocking_reason,
    concat_ws(','
        {%- for rule in rules %},
        case when {{ rule.condition }} then '{{ rule.code }}' end
        {%- endfor %}
    ) as reasons
{%- endmacro %}

{#- The quarantine table of one source: each landed row with at least one broken rule, its
    primary reason, whether it was kept out of staging, and the original text columns. -#}
{% macro quarantine_rows(base_model, source_table) -%}
with checked as (
    select _source_file, _source_row, blocking_reason, reasons
    from {{ ref(base_model) }}
    where reasons <> ''
),

landed as (
    select * from {{ source('raw', source_table) }}
),

final as (
    select
        coalesce(checked.blocking_reason, {{ dbt.split_part('checked.reasons', "','", 1) }}) as reason,
        checked.blocking_reason is not null as is_blocking,
        checked.reasons,
        landed.*
    from checked
    inner join landed
        on checked._source_file = landed._source_file
        and checked._source_row = landed._source_row
)

select * from final
{%- endmacro %}

{#- True when the row breaks no blocking rule other than duplicate_key: duplicates are ranked only
    among such rows, so a broken first copy does not shadow a good later one. -#}
{% macro passes_pre_duplicate_rules(rules) -%}
    not (
        {%- for rule in rules if rule.blocking and rule.code != 'duplicate_key' %}
        {{ 'or ' if not loop.first }}coalesce({{ rule.condition }}, false)
        {%- endfor %}
    )
{%- endmacro %}

{#- Rank of the row among the good copies of its key, in landing order (file, row); NULL for rows
    that break another blocking rule. Rank > 1 is a duplicate_key. -#}
{% macro duplicate_rank(rules, key_columns) -%}
    case when {{ passes_pre_duplicate_rules(rules) }}
        then row_number() over (
            partition by {{ key_columns | join(', ') }}, {{ passes_pre_duplicate_rules(rules) }}
            order by _source_file, _source_row)
    end
{%- endmacro %}
