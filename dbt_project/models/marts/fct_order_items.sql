-- One row per order line, with the order's customer and time (all order statuses).
with items as (
    select * from {{ ref('int_order_items') }}
),

final as (
    select
        order_id,
        customer_id,
        ordered_at,
        product_id,
        category,
        quantity,
        unit_price,
        line_amount
    from items
)

select * from final
