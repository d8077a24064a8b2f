{#- True for the row of dim_customers_history (alias) that was in effect at campaign date
    as_of_date (a DATE expression): the state known before as_of_date 00:00 UTC. Exactly one
    version per customer qualifies for any date: the first version's valid_from and the current
    version's valid_to are NULL (open). -#}
{% macro customer_version_at(as_of_date, alias) -%}
    ({{ alias }}.valid_from is null or {{ alias }}.valid_from < cast({{ as_of_date }} as timestamp))
    and ({{ alias }}.valid_to is null or {{ alias }}.valid_to >= cast({{ as_of_date }} as timestamp))
{%- endmacro %}
