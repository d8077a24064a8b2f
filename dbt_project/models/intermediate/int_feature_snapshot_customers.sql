-- The customers of the training snapshots: everyone, or a fixed hash sample of customers sized so
-- that customers x snapshot dates stays near var snapshot_max_rows. A customer is in or out of
-- every snapshot (their history stays whole); the salt keeps the sample independent of the
-- control-group and other hash splits.
{%- set max_rows = var('snapshot_max_rows') | int %}
{%- set count = var('snapshot_count') | int %}

with customers as (
    select customer_id from {{ ref('dim_customers') }}
),

share as (
    select least(1.0, {{ max_rows }} / greatest(1.0, count(*) * {{ count }})) as kept_share
    from customers
),

final as (
    select customers.customer_id
    from customers
    cross join share
    where
        share.kept_share >= 1.0
        or ({{ md5_number_lower("customers.customer_id || ':snapshot-sample'") }} % 1000000)
        < share.kept_share * 1000000
)

select * from final
