{#- Every landed row is either staged or quarantined as blocking, never both, never neither:
    fails with the counts when raw rows <> staged rows + blocking quarantine rows. -#}
{% test row_accounting(model, source_relation, quarantine_relation) %}
with counts as (
    select
        (select count(*) from {{ source_relation }}) as raw_rows,
        (select count(*) from {{ model }}) as staged_rows,
        (select count(*) from {{ quarantine_relation }} where is_blocking) as blocked_rows
)
select * from counts where raw_rows <> staged_rows + blocked_rows
{% endtest %}
