-- One row per provider event about a message we sent.
with responses as (
    select * from {{ ref('stg_shop__campaign_responses') }}
),

final as (
    select
        message_id,
        customer_id,
        campaign_id,
        channel,
        event,
        occurred_at,
        revenue
    from responses
)

select * from final
