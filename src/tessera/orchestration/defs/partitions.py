"""The one daily partitions definition: partition D is campaign date D and sees data before D.

The layout (``TESSERA_PARTITIONS_START``, ``TESSERA_TIMEZONE``) is read when the definitions are
loaded, that is when an asset module first asks for ``daily_partitions``, not when this module
is imported. Dagster fixes an asset's partitions when the asset is defined, so a code location
that should see other settings is a new process (``dagster dev`` reloads do that).
"""

from __future__ import annotations

import functools

import dagster as dg

from tessera.settings import Settings, load_settings

#: Every step that writes the DuckDB warehouse runs in this pool (limit 1 in dagster.yaml):
#: DuckDB allows one writing process at a time.
WAREHOUSE_POOL = "duckdb_warehouse"


def build_daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """Daily campaign dates from ``settings.partitions_start`` in ``settings.timezone``.

    ``end_offset=1`` makes today's campaign date a partition: it is built from data up to today
    00:00, which is complete once the day has started.
    """
    return dg.DailyPartitionsDefinition(
        start_date=settings.partitions_start, timezone=settings.timezone, end_offset=1
    )


@functools.cache
def _loaded() -> dg.DailyPartitionsDefinition:
    return build_daily_partitions(load_settings())


def __getattr__(name: str) -> dg.DailyPartitionsDefinition:
    # ``daily_partitions``, shared by every daily asset, is built on first use (PEP 562).
    if name == "daily_partitions":
        return _loaded()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
