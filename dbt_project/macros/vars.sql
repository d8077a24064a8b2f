{#- The campaign date D from var as_of, validated. At parse time (dbt parse, dagster-dbt's
    manifest) a placeholder is returned so the project parses without vars; a run that builds a
    model needing it fails with a message that says how to pass it. -#}
{% macro require_as_of() -%}
    {%- if not execute -%}
        {{ return('1970-01-01') }}
    {%- endif -%}
    {%- set text = optional_as_of() -%}
    {%- if text is none -%}
        {{ exceptions.raise_compiler_error(
            "customer_features needs the campaign date: pass --vars '{as_of: YYYY-MM-DD}' "
            ~ "or set TESSERA_AS_OF (features for D use data strictly before D 00:00 UTC)") }}
    {%- endif -%}
    {{ return(text) }}
{%- endmacro %}

{#- The campaign date D from var as_of or TESSERA_AS_OF, validated, or none when neither is set
    (and at parse time): for models that are "as of D" when given a date, else "as of now". -#}
{% macro optional_as_of() -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {#- Read at run time only: Dagster passes the date as TESSERA_AS_OF so that the parsed
        project (partial_parse.msgpack) stays valid from one date to the next; --vars wins. -#}
    {%- set value = var('as_of', none) -%}
    {%- if value is none or (value | string | trim) == '' -%}
        {%- set value = env_var('TESSERA_AS_OF', '') -%}
    {%- endif -%}
    {%- if value is none or (value | string | trim) == '' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set text = value | string | trim -%}
    {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', text) -%}
        {{ exceptions.raise_compiler_error(
            "var as_of must be a date YYYY-MM-DD, got '" ~ text ~ "'") }}
    {%- endif -%}
    {%- set _ = modules.datetime.datetime.strptime(text, '%Y-%m-%d') -%}
    {{ return(text) }}
{%- endmacro %}

{#- Categories with their own feature columns, validated as plain identifiers. -#}
{% macro feature_categories() -%}
    {%- set categories = var('categories') -%}
    {%- for c in categories -%}
        {%- if not modules.re.fullmatch('[a-z][a-z0-9_]*', c | string) -%}
            {{ exceptions.raise_compiler_error("var categories: '" ~ c ~ "' is not a lower-case identifier") }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(categories) }}
{%- endmacro %}
