-- One row per behavioural event of a staged customer, occurred_at in UTC.
with base as (
    select * from {{ ref('base_shop__events') }}
    where blocking_reason is null
),

final as (
    select
        customer_id,
        occurred_at,
        event_type,
        category,
        _source_file,
        _source_row
    from base
)

select * from final
