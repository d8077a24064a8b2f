-- Landed customers parsed and checked against the row-level rules (one row per landed row).
{%- set rules = [
    {'code': 'missing_key', 'condition': 'customer_id is null', 'blocking': true},
    {'code': 'unparseable_timestamp', 'condition': 'created_at is null', 'blocking': true},
    {'code': 'future_timestamp', 'condition': 'created_at >= ' ~ max_source_timestamp(), 'blocking': true},
    {'code': 'duplicate_key', 'condition': 'key_rank > 1', 'blocking': true},
    {'code': 'bad_email', 'condition': 'email is not null and not is_email_valid', 'blocking': false},
    {'code': 'bad_phone', 'condition': 'phone is not null and not is_phone_valid', 'blocking': false},
    {'code': 'unparseable_boolean', 'condition': 'is_opt_in_unparseable', 'blocking': false},
] %}

with source as (
    select * from {{ source('raw', 'customers') }}
),

parsed as (
    select
        nullif(trim(customer_id), '') as customer_id,
        {{ normalise_email('email') }} as email,
        {{ normalise_phone('phone', 'country') }} as phone,
        {{ parse_utc_timestamp('created_at') }} as created_at,
        nullif(upper(trim(country)), '') as country,
        nullif(trim(first_name), '') as first_name,
        -- Consent that cannot be read is no consent.
        coalesce({{ parse_boolean('email_opt_in') }}, false) as is_email_opt_in,
        coalesce({{ parse_boolean('sms_opt_in') }}, false) as is_sms_opt_in,
        ({{ parse_boolean('email_opt_in') }} is null and nullif(trim(email_opt_in), '') is not null)
            or ({{ parse_boolean('sms_opt_in') }} is null and nullif(trim(sms_opt_in), '') is not null)
            as is_opt_in_unparseable,
        _source_file,
        _source_row
    from source
),

validated as (
    select
        *,
        {{ is_valid_email('email') }} as is_email_valid,
        {{ is_valid_phone('phone') }} as is_phone_valid
    from parsed
),

ranked as (
    select
        *,
        {{ duplicate_rank(rules, ['customer_id']) }} as key_rank
    from validated
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
        _source_row,
        {{ reasons_columns(rules) }}
    from ranked
)

select * from final
