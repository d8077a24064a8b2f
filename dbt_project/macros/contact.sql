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

{#- normalise_phone(phone, country) is generated with the registry (quality_rules.sql) from
    tessera.quality.phones, which the quality gate and the activations layer use as well. -#}

{#- The pattern of the registry's rule bad_phone. -#}
{% macro is_valid_phone(normalised) -%}
    coalesce({{ regex_full_match(normalised, quality_rule('customers', 'bad_phone').pattern) }}, false)
{%- endmacro %}
