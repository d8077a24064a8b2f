-- One row per order line of a staged order.
with base as (
    select * from {{ ref('base_shop__order_items') }}
    where blocking_reason is null
),

final as (
    select
        order_id,
        product_id,
        category,
        quantity,
        unit_price,
        _source_file,
        _source_row
    from base
)

select * from final
