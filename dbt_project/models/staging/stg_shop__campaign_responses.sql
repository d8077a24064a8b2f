-- One row per provider event about a message sent to a staged customer, occurred_at in UTC.
with base as (
    select * from {{ ref('base_shop__campaign_responses') }}
    where blocking_reason is null
),

final as (
    select
        message_id,
        customer_id,
        campaign_id,
        channel,
        event,
        occurred_at,
        revenue,
        _source_file,
        _source_row
    from base
)

select * from final
