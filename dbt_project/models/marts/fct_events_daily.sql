-- Behavioural events counted per customer, UTC day, event type and category.
with events as (
    select * from {{ ref('stg_shop__events') }}
),

final as (
    select
        customer_id,
        cast(occurred_at as date) as event_date,
        event_type,
        category,
        count(*) as event_count
    from events
    group by 1, 2, 3, 4
)

select * from final
