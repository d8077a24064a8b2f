-- Features of every customer registered before the campaign date var('as_of'), one partition
-- (as_of_date) per run. The pre-hook empties the partition first, inside the model's
-- transaction, so a rerun replaces it whole (customers that vanished do not linger).
{%- set as_of = require_as_of() %}
{{ config(
    materialized='incremental',
    unique_key=['as_of_date', 'customer_id'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where as_of_date = cast('{{ require_as_of() }}' as date){% endif %}"
) }}

{{ customer_features_as_of("(select cast('" ~ as_of ~ "' as date) as as_of_date)") }}
