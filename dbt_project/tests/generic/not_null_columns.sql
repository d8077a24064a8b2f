{#- not_null for many columns in one query (one test node instead of one per column, which keeps
    `dbt build` quick on wide feature tables). Fails with the offending rows. -#}
{% test not_null_columns(model, columns) %}
select *
from {{ model }}
where
    {%- for column in columns %}
    {{ 'or ' if not loop.first }}{{ column }} is null
    {%- endfor %}
{% endtest %}
