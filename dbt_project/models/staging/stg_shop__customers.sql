-- Every landed customers row that passes the blocking rules: the customer's staged history, one
-- row per landed copy (re-sent and superseded copies included, so raw rows = these + blocking
-- quarantine rows). dim_customers_history turns it into versions; dim_customers picks one.
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
        updated_at,
        effective_at,
        content_hash,
        _source_file,
        _source_row,
        _source_modified_at
    from base
)

select * from final
