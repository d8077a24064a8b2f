-- One row per customer: the first good landed copy, contact details normalised and flagged.
with base as (
    select * from {{ ref('base_shop__customers') }}
    where blocking_reason is null
),

final as (
    select
        customer_id,
        email,
        is_email_valid,
        phone,
        is_phone_valid,
        created_at,
        country,
        first_name,
        is_email_opt_in,
        is_sms_opt_in,
        _source_file,
        _source_row
    from base
)

select * from final
