-- Landed campaign responses parsed and checked against the row-level rules (one row per landed row).
{#- The row rules come from the registry, src/tessera/quality/rules.yml. -#}
{%- set rules = quality_rules('campaign_responses') %}

with source as (
    select * from {{ source('raw', 'campaign_responses') }}
),

customers as (
    -- distinct: staging holds every landed copy of a customer (its history).
    select distinct customer_id from {{ ref('stg_shop__customers') }}
),

parsed as (
    select
        nullif(trim(source.message_id), '') as message_id,
        nullif(trim(source.customer_id), '') as customer_id,
        nullif(trim(source.campaign_id), '') as campaign_id,
        lower(trim(source.channel)) as channel,
        lower(trim(source.event)) as event,
        {{ parse_utc_timestamp('source.occurred_at') }} as occurred_at,
        nullif(trim(source.revenue), '') as revenue_text,
        {{ parse_number('source.revenue') }} as revenue,
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
    -- A message can be opened or clicked many times, so only a response identical to an earlier
    -- one (same message, event and time) is a re-delivery.
    select
        *,
        {{ duplicate_rank(rules, quality_rule('campaign_responses', 'duplicate_key').key) }} as key_rank
    from checked
),

final as (
    select
        message_id,
        customer_id,
        campaign_id,
        channel,
        event,
        occurred_at,
        revenue,
        _source_file,
        _source_row,
        {{ reasons_columns(rules) }}
    from ranked
)

select * from final
