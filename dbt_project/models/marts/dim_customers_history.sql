-- Customers as a slowly changing dimension (type 2): one row per state a customer was in, with
-- the interval it held. Built from every staged copy (stg_shop__customers), so the history is
-- exactly what the landing files say; remove an old file and its states are gone.
--   Order of copies: effective_at (updated_at, else created_at), then landing order: the file's
--   modification time, then file name, then row. Of several copies at one effective_at the
--   last in landing order holds; a copy equal to the state before it is no new version.
--   valid_from: effective_at, NULL for the first version (the earliest known state also stands
--   for the time before it was recorded); valid_to: the next version's valid_from, NULL for the
--   current one. The version in effect at campaign date D is the one with
--   valid_from < D 00:00 <= valid_to (NULLs open): macro customer_version_at.
with staged as (
    select * from {{ ref('stg_shop__customers') }}
),

ranked_at_each_time as (
    select
        *,
        row_number() over (
            partition by customer_id, effective_at
            order by _source_modified_at desc, _source_file desc, _source_row desc
        ) as rank_at_time
    from staged
),

last_at_each_time as (
    select * from ranked_at_each_time
    where rank_at_time = 1
),

changes as (
    select
        *,
        lag(content_hash) over (partition by customer_id order by effective_at) as previous_hash
    from last_at_each_time
),

versions as (
    select *
    from changes
    where previous_hash is null or previous_hash <> content_hash
),

numbered as (
    select
        *,
        row_number() over (partition by customer_id order by effective_at) as customer_version,
        lead(effective_at) over (partition by customer_id order by effective_at) as next_effective_at
    from versions
),

final as (
    select
        customer_id,
        customer_version,
        case when customer_version > 1 then effective_at end as valid_from,
        next_effective_at as valid_to,
        next_effective_at is null as is_current,
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
        _source_file,
        _source_row
    from numbered
)

select * from final
