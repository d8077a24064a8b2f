-- One row per customer with normalised, flagged contact details and consent.
with customers as (
    select * from {{ ref('stg_shop__customers') }}
),

final as (
    select
        customer_id,
        email,
        phone,
        created_at,
        country,
        first_name,
        is_email_opt_in,
        is_sms_opt_in,
        is_email_valid,
        is_phone_valid
    from customers
)

select * from final
