-- Landed order lines parsed and checked against the row-level rules (one row per landed row).
{%- set rules = [
    {'code': 'missing_key', 'condition': 'order_id is null or product_id is null', 'blocking': true},
    {'code': 'unparseable_number', 'condition': 'quantity is null or unit_price is null or quantity <> floor(quantity)', 'blocking': true},
    {'code': 'negative_quantity', 'condition': 'quantity < 0', 'blocking': true},
    {'code': 'negative_amount', 'condition': 'unit_price < 0', 'blocking': true},
    {'code': 'unknown_order', 'condition': 'not is_known_order', 'blocking': true},
    {'code': 'duplicate_key', 'condition': 'key_rank > 1', 'blocking': true},
] %}

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
        {{ duplicate_rank(rules, ['order_id', 'product_id', 'category', 'quantity', 'unit_price']) }} as key_rank
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
