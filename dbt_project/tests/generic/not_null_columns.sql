{#- not_null for many columns in one query (one test node instead of one per column, which keeps
    `dbt build` quick on wide feature tables). Fails with the offending rows.
    when_provided (optional): {source: [columns]}, columns that must be non-NULL only on rows whose
    as_of_date comes after the optional source's first day (int_sources_provided); before that,
    or without the source at all, they are NULL by design. -#}
{% test not_null_columns(model, columns, when_provided={}) %}
select *
from {{ model }}
where
    {%- for column in columns %}
    {{ 'or ' if not loop.first }}{{ column }} is null
    {%- endfor %}
    {%- for source_name, source_columns in when_provided.items() %}
    or (
        coalesce((select first_{{ source_name }}_date from {{ ref('int_sources_provided') }}) < as_of_date, false)
        and ({% for column in source_columns %}{{ ' or ' if not loop.first }}{{ column }} is null{% endfor %})
    )
    {%- endfor %}
{% endtest %}
