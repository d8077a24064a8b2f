-- Landed orders parsed and checked against the row-level rules (one row per landed row).
{#- The row rules come from the registry, src/tessera/quality/rules.yml. -#}
{%- set rules = quality_rules('orders') %}

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
        {{ duplicate_rank(rules, quality_rule('orders', 'duplicate_key').key) }} as key_rank
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
