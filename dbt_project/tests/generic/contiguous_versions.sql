{#- Versions of one key tile time without gaps or overlaps: version 1 opens (valid_from NULL),
    each valid_to is the next version's valid_from, the last is open (valid_to NULL) and current.
    So exactly one version is in effect at any date. Fails with the offending rows. -#}
{% test contiguous_versions(model, key, version) %}
with ordered as (
    select
        {{ key }} as key_value,
        {{ version }} as version_number,
        valid_from,
        valid_to,
        is_current,
        lead(valid_from) over (partition by {{ key }} order by {{ version }}) as next_valid_from,
        lead({{ version }}) over (partition by {{ key }} order by {{ version }}) as next_version
    from {{ model }}
)
select * from ordered
where (version_number = 1) <> (valid_from is null)
    or (next_version is null) <> (valid_to is null)
    or (next_version is null) <> is_current
    or (next_version is not null and next_version <> version_number + 1)
    or (next_version is not null and next_valid_from <> valid_to)
    or (valid_from is not null and valid_to is not null and valid_to <= valid_from)
{% endtest %}
