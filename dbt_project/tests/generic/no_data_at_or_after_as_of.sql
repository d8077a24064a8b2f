{#- Point-in-time guard: fails for every row whose features used a source timestamp at or after
    its as_of_date 00:00 UTC (column_name is the audit column, normally _max_source_at). -#}
{% test no_data_at_or_after_as_of(model, column_name, as_of_column='as_of_date') %}
select *
from {{ model }}
where {{ column_name }} >= cast({{ as_of_column }} as timestamp)
{% endtest %}
