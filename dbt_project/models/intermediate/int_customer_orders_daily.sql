-- Orders pre-aggregated per customer and UTC day: the features join this (not single orders) to
-- their as_of dates, which keeps the point-in-time join small. Only completed orders count as
-- orders and revenue; last_order_at covers every status (cart abandonment asks "any order?").
{%- set categories = feature_categories() %}

with orders as (
    select * from {{ ref('stg_shop__orders') }}
),

items as (
    select * from {{ ref('int_order_items') }}
    where order_status = 'completed'
),

order_days as (
    select
        customer_id,
        cast(ordered_at as date) as activity_date,
        sum(case when status = 'completed' then 1 else 0 end) as completed_orders,
        sum(case when status = 'completed' then amount else 0 end) as completed_revenue,
        min(case when status = 'completed' then ordered_at end) as first_completed_at,
        max(case when status = 'completed' then ordered_at end) as last_completed_at,
        max(ordered_at) as last_order_at
    from orders
    group by 1, 2
),

item_days as (
    select
        customer_id,
        cast(ordered_at as date) as activity_date,
        {%- for c in categories %}
            sum(case when category = '{{ c }}' then quantity else 0 end) as items_{{ c }},
            sum(case when category = '{{ c }}' then line_amount else 0 end) as item_revenue_{{ c }},
        {%- endfor %}
        sum(line_amount) as item_revenue
    from items
    group by 1, 2
),

final as (
    select
        order_days.customer_id,
        order_days.activity_date,
        order_days.completed_orders,
        order_days.completed_revenue,
        order_days.first_completed_at,
        order_days.last_completed_at,
        order_days.last_order_at,
        {%- for c in categories %}
            coalesce(item_days.items_{{ c }}, 0) as items_{{ c }},
            coalesce(item_days.item_revenue_{{ c }}, 0) as item_revenue_{{ c }},
        {%- endfor %}
        coalesce(item_days.item_revenue, 0) as item_revenue
    from order_days
    left join item_days
        on
            order_days.customer_id = item_days.customer_id
            and order_days.activity_date = item_days.activity_date
)

select * from final
