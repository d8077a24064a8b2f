{#- The column holds only the accepted values of a rule of the registry
    (src/tessera/quality/rules.yml), e.g. table orders, code invalid_status; NULL is not judged. -#}
{% test values_allowed_by_rule(model, column_name, table, code) %}
{%- set accepted = quality_rule(table, code).accepted -%}
{%- if not accepted -%}
    {{ exceptions.raise_compiler_error("values_allowed_by_rule: rule " ~ table ~ "." ~ code
        ~ " lists no accepted values in src/tessera/quality/rules.yml") }}
{%- endif %}
select {{ column_name }} as value
from {{ model }}
where {{ column_name }} not in ('{{ accepted | join("', '") }}')
{% endtest %}
