-- One row: since when each optional source has data. A shop needs only customers and orders;
-- order_items, events and campaign_responses may be absent (an empty raw table), header-only, or
-- start later than the orders (web tracking added last year, no campaigns sent yet). A source is
-- provided for campaign date D when it has data on a day before D, the same point-in-time rule
-- as the features; before that, the features that need it are NULL, not 0: "no web events
-- landed" is not "no web activity". A view over the daily pre-aggregates, so it is always current.
{{ config(materialized='view') }}

with order_items as (
    select min(cast(ordered_at as date)) as first_order_items_date
    from {{ ref('int_order_items') }}
),

events as (
    select min(activity_date) as first_events_date
    from {{ ref('int_customer_events_daily') }}
),

responses as (
    select min(activity_date) as first_campaign_responses_date
    from {{ ref('int_customer_responses_daily') }}
),

final as (
    select
        order_items.first_order_items_date,
        events.first_events_date,
        responses.first_campaign_responses_date
    from order_items
    cross join events
    cross join responses
)

select * from final
