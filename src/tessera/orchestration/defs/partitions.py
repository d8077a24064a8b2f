"""The one daily partitions definition: partition D is campaign date D and sees data before D."""

import dagster as dg

from tessera.settings import load_settings

_settings = load_settings()

#: Shared by every daily asset. ``end_offset=1`` makes today's campaign date a partition: it is
#: built from data up to today 00:00, which is complete once the day has started.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=_settings.partitions_start,
    timezone=_settings.timezone,
    end_offset=1,
)

#: Every step that writes the DuckDB warehouse runs in this pool (limit 1 in dagster.yaml):
#: DuckDB allows one writing process at a time.
WAREHOUSE_POOL = "duckdb_warehouse"
