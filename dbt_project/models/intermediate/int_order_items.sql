-- Order lines with their order's customer, time and status: reused by fct_orders (item counts,
-- top category), fct_order_items and the daily order facts behind the features.
with items as (
    select * from {{ ref('stg_shop__order_items') }}
),

orders as (
    select * from {{ ref('stg_shop__orders') }}
),

final as (
    select
        items.order_id,
        orders.customer_id,
        orders.ordered_at,
        orders.status as order_status,
        items.product_id,
        items.category,
        items.quantity,
        items.unit_price,
        items.quantity * items.unit_price as line_amount
    from items
    inner join orders on items.order_id = orders.order_id
)

select * from final
