{#- Text-to-type parsers for landing columns (all VARCHAR). Each returns NULL for text it cannot
    parse, so the quarantine rules can tell "missing" from "unparseable". Dispatched so another
    adapter can bring its own variant; the defaults are ANSI-ish SQL. -#}

{#- A timestamp text, with or without a UTC offset, as a naive UTC timestamp. Text without an
    offset is taken as UTC (the profile sets the session TimeZone to UTC). -#}
{% macro parse_utc_timestamp(column) -%}
    {{ adapter.dispatch('parse_utc_timestamp', 'tessera')(column) }}
{%- endmacro %}

{% macro default__parse_utc_timestamp(column) -%}
    cast({{ try_cast_as("nullif(trim(" ~ column ~ "), '')", "timestamp with time zone") }} at time zone 'UTC' as timestamp)
{%- endmacro %}

{% macro duckdb__parse_utc_timestamp(column) -%}
    timezone('UTC', try_cast(nullif(trim({{ column }}), '') as timestamp with time zone))
{%- endmacro %}

{#- A cast that yields NULL instead of failing. dbt.safe_cast falls back to a plain cast on
    adapters that do not override it (dbt-duckdb does not), so duckdb gets try_cast here. -#}
{% macro try_cast_as(field, type) -%}
    {{ adapter.dispatch('try_cast_as', 'tessera')(field, type) }}
{%- endmacro %}

{% macro default__try_cast_as(field, type) -%}
    {{ dbt.safe_cast(field, type) }}
{%- endmacro %}

{% macro duckdb__try_cast_as(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}

{#- A decimal number text ("12.50"; no thousands separators) as a finite double. Text the cast
    reads as a non-finite value (NaN, nan, Infinity, -inf, or 1e309, which overflows to
    infinity) is NULL like any other unparseable text: NaN compares as greater than every
    number, so it would pass "amount >= 0" and poison every sum downstream. -#}
{% macro parse_number(column) -%}
    {{ finite_or_null(try_cast_as("nullif(trim(" ~ column ~ "), '')", "double precision")) }}
{%- endmacro %}

{#- The double expression, or NULL when it is NaN or +-infinity. -#}
{% macro finite_or_null(expression) -%}
    {{ adapter.dispatch('finite_or_null', 'tessera')(expression) }}
{%- endmacro %}

{% macro default__finite_or_null(expression) -%}
    {#- NaN is outside every range (unordered in IEEE, greatest in PostgreSQL). -#}
    case when ({{ expression }}) between -1.7976931348623157e308 and 1.7976931348623157e308
        then {{ expression }} end
{%- endmacro %}

{% macro duckdb__finite_or_null(expression) -%}
    case when isfinite({{ expression }}) then {{ expression }} end
{%- endmacro %}

{#- A boolean text: the registry's texts for true and false (any case); anything else is NULL. -#}
{% macro parse_boolean(column) -%}
    case
        when lower(trim({{ column }})) in ('{{ boolean_texts(true) | join("', '") }}') then true
        when lower(trim({{ column }})) in ('{{ boolean_texts(false) | join("', '") }}') then false
    end
{%- endmacro %}

{#- Whole-string regular-expression match. -#}
{% macro regex_full_match(column, pattern) -%}
    {{ adapter.dispatch('regex_full_match', 'tessera')(column, pattern) }}
{%- endmacro %}

{% macro default__regex_full_match(column, pattern) -%}
    ({{ column }} ~ '^(?:{{ pattern }})$')
{%- endmacro %}

{% macro duckdb__regex_full_match(column, pattern) -%}
    regexp_full_match({{ column }}, '{{ pattern }}')
{%- endmacro %}

{#- Remove every character that is not a digit. -#}
{% macro digits_only(column) -%}
    {{ adapter.dispatch('digits_only', 'tessera')(column) }}
{%- endmacro %}

{% macro default__digits_only(column) -%}
    regexp_replace({{ column }}, '[^0-9]', '', 'g')
{%- endmacro %}

{#- The latest sensible source timestamp: var max_timestamp, else when this dbt run started (UTC).
    Rows at or after it are quarantined as future_timestamp. -#}
{% macro max_source_timestamp() -%}
    {%- set configured = var('max_timestamp', none) -%}
    {%- if configured -%}
        cast('{{ configured }}' as timestamp)
    {%- else -%}
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp)
    {%- endif -%}
{%- endmacro %}
