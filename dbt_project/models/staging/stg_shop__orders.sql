-- One row per order (all statuses), amounts as numbers, ordered_at in UTC.
with base as (
    select * from {{ ref('base_shop__orders') }}
    where blocking_reason is null
),

final as (
    select
        order_id,
        customer_id,
        ordered_at,
        amount,
        currency,
        status,
        _source_file,
        _source_row
    from base
)

select * from final
