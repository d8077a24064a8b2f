{#- Contact normalisation shared by staging and tests. -#}

{#- Country calling codes for phone numbers written without an international prefix. Countries
    missing here keep such numbers invalid (is_phone_valid = false) rather than guessing. -#}
{% macro calling_codes() -%}
    {{ return({
        'US': '1', 'CA': '1', 'GB': '44', 'IE': '353', 'DE': '49', 'AT': '43', 'CH': '41',
        'FR': '33', 'BE': '32', 'NL': '31', 'LU': '352', 'IT': '39', 'ES': '34', 'PT': '351',
        'DK': '45', 'SE': '46', 'NO': '47', 'FI': '358', 'IS': '354', 'PL': '48', 'CZ': '420',
        'SK': '421', 'HU': '36', 'SI': '386', 'HR': '385', 'RO': '40', 'BG': '359', 'GR': '30',
        'EE': '372', 'LV': '371', 'LT': '370', 'AU': '61', 'NZ': '64', 'JP': '81', 'KR': '82',
        'CN': '86', 'IN': '91', 'SG': '65', 'BR': '55', 'MX': '52', 'AR': '54', 'ZA': '27'
    }) }}
{%- endmacro %}

{#- Lower-cased, trimmed e-mail; empty text becomes NULL. -#}
{% macro normalise_email(column) -%}
    nullif(lower(trim({{ column }})), '')
{%- endmacro %}

{#- A normalised e-mail is valid when it looks like local@domain.tld (no spaces, one @). -#}
{% macro is_valid_email(normalised) -%}
    coalesce({{ regex_full_match(normalised, "[a-z0-9._%+-]+@[a-z0-9-]+([.][a-z0-9-]+)*[.][a-z]{2,}") }}, false)
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

{% macro is_valid_phone(normalised) -%}
    coalesce({{ regex_full_match(normalised, "[+][1-9][0-9]{7,14}") }}, false)
{%- endmacro %}
