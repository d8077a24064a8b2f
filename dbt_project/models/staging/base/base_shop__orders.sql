-- Landed orders parsed and checked against the row-level rules (one row per landed row).
{%- set rules = [
    {'code': 'missing_key', 'condition': 'order_id is null or customer_id is null', 'blocking': true},
    {'code': 'unparseable_timestamp', 'condition': 'ordered_at is null', 'blocking': true},
    {'code': 'unparseable_number', 'condition': 'amount is null', 'blocking': true},
    {'code': 'invalid_status', 'condition': "status is null or status not in ('completed', 'cancelled', 'refunded')", 'blocking': true},
    {'code': 'negative_amount', 'condition': 'amount < 0', 'blocking': true},
    {'code': 'future_timestamp', 'condition': 'ordered_at >= ' ~ max_source_timestamp(), 'blocking': true},
    {'code': 'unknown_customer', 'condition': 'not is_known_customer', 'blocking': true},
    {'code': 'duplicate_key', 'condition': 'key_rank > 1', 'blocking': true},
] %}

with source as (
    select * from {{ source('raw', 'orders') }}
),

customers as (
    -- distinct: staging holds every landed copy of a customer (its history).
    select distinct customer_id from {{ ref('stg_shop__customers') }}
),

parsed as (
    select
        nullif(trim(source.order_id), '') as order_id,
        nullif(trim(source.customer_id), '') as customer_id,
        {{ parse_utc_timestamp('source.ordered_at') }} as ordered_at,
        {{ parse_number('source.amount') }} as amount,
        nullif(upper(trim(source.currency)), '') as currency,
        lower(trim(source.status)) as status,
        source._source_file,
        source._source_row
    from source
),

checked as (
    select
        parsed.*,
        customers.customer_id is not null as is_known_customer
    from parsed
    left join customers on parsed.customer_id = customers.customer_id
),

ranked as (
    select
        *,
        {{ duplicate_rank(rules, ['order_id']) }} as key_rank
    from checked
),

final as (
    select
        order_id,
        customer_id,
        ordered_at,
        amount,
        currency,
        status,
        _source_file,
        _source_row,
        {{ reasons_columns(rules) }}
    from ranked
)

select * from final
