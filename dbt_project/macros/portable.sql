{#- What the engines spell differently, behind adapter.dispatch: DuckDB (the default engine) and
    PostgreSQL (tested: tests/integration/dbt/test_postgres_engine.py builds the tiny shop on
    both and compares every table row for row). Another adapter brings its own variant of each
    macro here (docs/warehouse.md). -#}

{#- The lower 64 bits of the MD5 digest of a text, as an unsigned whole number: DuckDB's
    md5_number_lower, and what the Python steps compute (hashlib; tessera.campaigns). Every hash
    that splits customers uses it, so a sample is the same customers on every engine. -#}
{% macro md5_number_lower(text) -%}
    {{ adapter.dispatch('md5_number_lower', 'tessera')(text) }}
{%- endmacro %}

{% macro duckdb__md5_number_lower(text) -%}
    md5_number_lower({{ text }})
{%- endmacro %}

{% macro default__md5_number_lower(text) -%}
    {#- Hex digits 17..32 are bytes 8..15 of the digest; the number reads them little-endian. -#}
    {%- set digest = "md5(" ~ text ~ ")" -%}
    {%- set pairs = [] -%}
    {%- for byte in range(15, 7, -1) -%}
        {%- do pairs.append("substr(" ~ digest ~ ", " ~ (byte * 2 + 1) ~ ", 2)") -%}
    {%- endfor -%}
    {%- set signed = "cast(cast(('x' || " ~ pairs | join(" || ") ~ ") as bit(64)) as bigint)" -%}
    (cast({{ signed }} as numeric) + case when {{ signed }} < 0 then 18446744073709551616 else 0 end)
{%- endmacro %}

{#- Functions an engine needs before the models run (the project's on-run-start hook). -#}
{% macro create_engine_functions() -%}
    {{ adapter.dispatch('create_engine_functions', 'tessera')() }}
{%- endmacro %}

{% macro default__create_engine_functions() -%}
    select 1
{%- endmacro %}

{#- PostgreSQL has no try_cast: each parser is a function that returns NULL where the cast
    fails. Only the ISO 8601 forms DuckDB reads are timestamps (PostgreSQL alone would also read
    'now', 'today', 'epoch' or 'Dec 4 2026'), so both engines quarantine the same rows. Texts
    without an offset are UTC, as in the DuckDB profile. -#}
{% macro postgres__create_engine_functions() -%}
    create schema if not exists {{ target.schema }};
    create or replace function {{ target.schema }}.tessera_try_timestamptz(value text)
    returns timestamp with time zone language plpgsql stable set timezone = 'UTC' as $body$
    begin
        if value !~ '^\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?$' then
            return null;
        end if;
        return value::timestamp with time zone;
    exception when others then
        return null;
    end
    $body$;
    create or replace function {{ target.schema }}.tessera_try_double(value text)
    returns double precision language plpgsql immutable as $body$
    begin
        return value::double precision;
    exception when others then
        return null;
    end
    $body$;
{%- endmacro %}

{% macro postgres__try_cast_as(field, type) -%}
    {%- if type == 'timestamp with time zone' -%}
        {{ target.schema }}.tessera_try_timestamptz({{ field }})
    {%- elif type == 'double precision' -%}
        {{ target.schema }}.tessera_try_double({{ field }})
    {%- else -%}
        {{ exceptions.raise_compiler_error("try_cast_as: no PostgreSQL parser for type " ~ type) }}
    {%- endif -%}
{%- endmacro %}
