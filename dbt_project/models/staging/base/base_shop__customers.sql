-- Landed customers parsed and checked against the row-level rules (one row per landed row).
-- Customers are a changing table: a later copy of a customer_id updates it (see
-- dim_customers_history), so repeated keys are no error. Only copies in one file at the same
-- updated_at (both empty counts as the same) that disagree are: the first such copy wins and the
-- others are duplicate_key. Identical copies (after normalisation) are re-sends, staged as is.
{#- The row rules come from the registry, src/tessera/quality/rules.yml. -#}
{%- set rules = quality_rules('customers') %}
{#- What a copy says about the customer: two copies with the same values are the same state. -#}
{%- set content_columns = [
    'email', 'phone', 'created_at', 'country', 'first_name', 'is_email_opt_in', 'is_sms_opt_in',
] %}
{%- set hashed_values = [] %}
{%- for column in content_columns %}
    {%- do hashed_values.append(dbt.hash("coalesce('=' || cast(" ~ column ~ " as varchar), '~')")) %}
{%- endfor %}

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
        {{ parse_utc_timestamp('updated_at') }} as updated_at,
        nullif(trim(updated_at), '') as updated_at_text,
        _source_file,
        _source_row,
        _source_modified_at
    from source
),

validated as (
    select
        *,
        {{ is_valid_email('email') }} as is_email_valid,
        {{ is_valid_phone('phone') }} as is_phone_valid,
        -- Each value hashed on its own ('=' marks a value, '~' NULL), so no two different
        -- states concatenate to the same text.
        {{ dbt.hash(dbt.concat(hashed_values)) }} as content_hash
    from parsed
),

ranked as (
    select
        *,
        case
            when {{ passes_pre_duplicate_rules(rules) }}
                then content_hash <> first_value(content_hash) over (
                    partition by customer_id, _source_file, updated_at, {{ passes_pre_duplicate_rules(rules) }}
                    order by _source_row
                )
        end as is_conflicting_copy
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
        updated_at,
        -- When this copy's state took effect: its updated_at, else the customer's created_at.
        coalesce(updated_at, created_at) as effective_at,
        content_hash,
        _source_file,
        _source_row,
        _source_modified_at,
        {{ reasons_columns(rules) }}
    from ranked
)

select * from final
