-- The as_of dates of the training snapshots: snapshot_count dates, snapshot_every_days apart,
-- ending at var snapshot_end (default: the Monday on or before the latest order date).
{%- set count = var('snapshot_count') | int %}
{%- set every = var('snapshot_every_days') | int %}
{%- set snapshot_end = var('snapshot_end', none) %}

with snapshot_end as (
    {%- if snapshot_end %}
    select cast('{{ snapshot_end }}' as date) as snapshot_end
    {%- else %}
        select cast({{ dbt.date_trunc('week', 'max(ordered_at)') }} as date) as snapshot_end
        from {{ ref('stg_shop__orders') }}
    {%- endif %}
),

steps as (
    {%- for i in range(count) %}
        select {{ i }} as step{{ ' union all' if not loop.last }}
    {%- endfor %}
),

final as (
    select
        cast({{ dbt.dateadd('day', '-1 * steps.step * ' ~ every, 'snapshot_end.snapshot_end') }} as date) as as_of_date
    from snapshot_end
    cross join steps
    where snapshot_end.snapshot_end is not null
)

select * from final
