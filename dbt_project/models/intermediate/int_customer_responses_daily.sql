-- Campaign responses pre-aggregated per customer and UTC day for the engagement features.
-- A response is an open, click or conversion.
with responses as (
    select * from {{ ref('stg_shop__campaign_responses') }}
),

final as (
    select
        customer_id,
        cast(occurred_at as date) as activity_date,
        sum(case when event = 'delivered' then 1 else 0 end) as delivered,
        sum(case when event = 'open' then 1 else 0 end) as opens,
        sum(case when event = 'click' then 1 else 0 end) as clicks,
        sum(case when event = 'conversion' then 1 else 0 end) as conversions,
        sum(case when event = 'unsubscribe' then 1 else 0 end) as unsubscribes,
        sum(case when event = 'bounce' then 1 else 0 end) as bounces,
        sum(case when event = 'spam_report' then 1 else 0 end) as spam_reports,
        max(case when event in ('open', 'click', 'conversion') then occurred_at end) as last_response_at,
        max(occurred_at) as last_message_event_at
    from responses
    group by 1, 2
)

select * from final
