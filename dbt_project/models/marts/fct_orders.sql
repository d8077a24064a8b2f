-- One row per order, every status (only completed orders count as revenue downstream), with
-- its item count (NULL before order lines were provided) and the category with the largest line amount.
with orders as (
    select * from {{ ref('stg_shop__orders') }}
),

items as (
    select * from {{ ref('int_order_items') }}
),

category_amounts as (
    select
        order_id,
        category,
        sum(line_amount) as category_amount
    from items
    where category is not null
    group by 1, 2
),

top_categories as (
    select
        order_id,
        category as top_category,
        -- ties go to the alphabetically first category, so reruns agree
        row_number() over (partition by order_id order by category_amount desc, category asc) as category_rank
    from category_amounts
),

item_counts as (
    select
        order_id,
        sum(quantity) as item_count
    from items
    group by 1
),

-- Order lines are an optional source: before its first day (or without it) an order's item
-- count is unknown (NULL), not 0.
sources as (
    select first_order_items_date from {{ ref('int_sources_provided') }}
),

final as (
    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        cast(orders.ordered_at as date) as order_date,
        orders.amount,
        orders.currency,
        orders.status,
        case
            when cast(orders.ordered_at as date) >= sources.first_order_items_date
                then cast(coalesce(item_counts.item_count, 0) as bigint)
        end as item_count,
        top_categories.top_category
    from orders
    cross join sources
    left join item_counts on orders.order_id = item_counts.order_id
    left join top_categories
        on
            orders.order_id = top_categories.order_id
            and top_categories.category_rank = 1
)

select * from final
