-- Landed behavioural events parsed and checked against the row-level rules (one row per landed row).
{#- The row rules come from the registry, src/tessera/quality/rules.yml. -#}
{%- set rules = quality_rules('events') %}

with source as (
    select * from {{ source('raw', 'events') }}
),

customers as (
    -- distinct: staging holds every landed copy of a customer (its history).
    select distinct customer_id from {{ ref('stg_shop__customers') }}
),

parsed as (
    select
        nullif(trim(source.customer_id), '') as customer_id,
        {{ parse_utc_timestamp('source.occurred_at') }} as occurred_at,
        lower(trim(source.event_type)) as event_type,
        nullif(lower(trim(source.category)), '') as category,
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
    -- Events have no key: an event identical to an earlier one (same customer, time, type and
    -- category) is a re-delivery.
    select
        *,
        {{ duplicate_rank(rules, quality_rule('events', 'duplicate_key').key) }} as key_rank
    from checked
),

final as (
    select
        customer_id,
        occurred_at,
        event_type,
        category,
        _source_file,
        _source_row,
        {{ reasons_columns(rules) }}
    from ranked
)

select * from final
