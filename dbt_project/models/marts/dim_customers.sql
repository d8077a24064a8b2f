-- One row per customer: the version of dim_customers_history in effect at the campaign date D
-- (var as_of / TESSERA_AS_OF: the state known before D 00:00 UTC), or the current version when
-- no date is given, as in the unpartitioned daily build: consent and address are then the
-- latest landed, so a withdrawal that landed at any time before a send counts.
{%- set as_of = optional_as_of() %}

with history as (
    select * from {{ ref('dim_customers_history') }}
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
        is_phone_valid,
        updated_at,
        customer_version
    from history
    {%- if as_of is none %}
        where is_current
    {%- else %}
        where {{ customer_version_at("cast('" ~ as_of ~ "' as date)", 'history') }}
    {%- endif %}
)

select * from final
