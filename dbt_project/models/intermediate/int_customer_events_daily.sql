-- Behavioural events pre-aggregated per customer and UTC day, wide (one column per event type
-- and per category viewed), with the day's cart outcome. A cart day is abandoned when no order
-- (any status) was placed on that day at or after its last add_to_cart: judged within the day, so
-- the day before as_of (the "last 24 h") never looks past as_of 00:00.
{%- set categories = feature_categories() %}

with events as (
    select * from {{ ref('stg_shop__events') }}
),

order_days as (
    select
        customer_id,
        activity_date,
        last_order_at
    from {{ ref('int_customer_orders_daily') }}
),

event_days as (
    select
        customer_id,
        cast(occurred_at as date) as activity_date,
        count(*) as events,
        sum(case when event_type = 'page_view' then 1 else 0 end) as page_views,
        sum(case when event_type = 'product_view' then 1 else 0 end) as product_views,
        sum(case when event_type = 'search' then 1 else 0 end) as searches,
        sum(case when event_type = 'app_open' then 1 else 0 end) as app_opens,
        sum(case when event_type = 'add_to_cart' then 1 else 0 end) as add_to_carts,
        {%- for c in categories %}
            sum(case when event_type = 'product_view' and category = '{{ c }}' then 1 else 0 end)
                as product_views_{{ c }},
        {%- endfor %}
        max(occurred_at) as last_event_at,
        max(case when event_type = 'app_open' then occurred_at end) as last_app_open_at,
        max(case when event_type = 'add_to_cart' then occurred_at end) as last_cart_at
    from events
    group by 1, 2
),

final as (
    select
        event_days.*,
        case when event_days.last_cart_at is not null then 1 else 0 end as cart_days,
        case
            when
                event_days.last_cart_at is not null
                and (order_days.last_order_at is null or order_days.last_order_at < event_days.last_cart_at)
                then 1
            else 0
        end as abandoned_cart_days
    from event_days
    left join order_days
        on
            event_days.customer_id = order_days.customer_id
            and event_days.activity_date = order_days.activity_date
)

select * from final
