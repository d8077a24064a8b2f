-- Landed order lines parsed and checked against the row-level rules (one row per landed row).
{#- The row rules come from the registry, src/tessera/quality/rules.yml. -#}
{%- set rules = quality_rules('order_items') %}

with source as (
    select * from {{ source('raw', 'order_items') }}
),

orders as (
    select order_id from {{ ref('stg_shop__orders') }}
),

parsed as (
    select
        nullif(trim(source.order_id), '') as order_id,
        nullif(trim(source.product_id), '') as product_id,
        nullif(lower(trim(source.category)), '') as category,
        {{ parse_number('source.quantity') }} as quantity,
        {{ parse_number('source.unit_price') }} as unit_price,
        source._source_file,
        source._source_row
    from source
),

checked as (
    select
        parsed.*,
        orders.order_id is not null as is_known_order
    from parsed
    left join orders on parsed.order_id = orders.order_id
),

ranked as (
    -- Order lines have no key of their own: a line identical to an earlier one is a re-delivery.
    select
        *,
        {{ duplicate_rank(rules, quality_rule('order_items', 'duplicate_key').key) }} as key_rank
    from checked
),

final as (
    select
        order_id,
        product_id,
        category,
        cast(quantity as bigint) as quantity,
        unit_price,
        _source_file,
        _source_row,
        {{ reasons_columns(rules) }}
    from ranked
)

select * from final
