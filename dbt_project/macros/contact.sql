{#- Contact normalisation shared by staging and tests. -#}

{#- calling_codes() is generated from the rule registry (quality_rules.sql). -#}

{#- Lower-cased, trimmed e-mail; empty text becomes NULL. -#}
{% macro normalise_email(column) -%}
    nullif(lower(trim({{ column }})), '')
{%- endmacro %}

{#- A normalised e-mail is valid when it looks like local@domain.tld (no spaces, one @): the
    pattern of the registry's rule bad_email. -#}
{% macro is_valid_email(normalised) -%}
    coalesce({{ regex_full_match(normalised, quality_rule('customers', 'bad_email').pattern) }}, false)
{%- endmacro %}

{#- E.164-like phone: '+' and digits. "+..." and "00..." carry their country code; other numbers
    get the customer's country code with a national trunk '0' dropped. -#}
{% macro normalise_phone(phone, country) -%}
    case
        when nullif(trim({{ phone }}), '') is null then null
        when trim({{ phone }}) like '+%' then '+' || {{ digits_only(phone) }}
        when {{ digits_only(phone) }} like '00%' then '+' || substr({{ digits_only(phone) }}, 3)
        {%- for country_code, prefix in calling_codes().items() %}
        when upper(trim({{ country }})) = '{{ country_code }}' then '+{{ prefix }}' || ltrim({{ digits_only(phone) }}, '0')
        {%- endfor %}
        else {{ digits_only(phone) }}
    end
{%- endmacro %}

{#- The pattern of the registry's rule bad_phone. -#}
{% macro is_valid_phone(normalised) -%}
    coalesce({{ regex_full_match(normalised, quality_rule('customers', 'bad_phone').pattern) }}, false)
{%- endmacro %}
