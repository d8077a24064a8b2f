"""Journey jobs: the short warehouse snapshot (warehouse pool) and the tick (journey pool).

The tick never opens the warehouse: it reads the snapshot files and writes only the journey
state store, so it runs while the daily job holds the warehouse. The snapshot step takes the
warehouse pool for the seconds of its read, between the daily job's steps.
"""

import datetime as dt

import dagster as dg
from dagster_duckdb import DuckDBResource

from tessera.journeys import store
from tessera.journeys.engine import landed_suppressions, run_tick
from tessera.journeys.paths import JourneyPaths
from tessera.journeys.snapshot import read_snapshot, take_snapshot, write_snapshot
from tessera.orchestration.defs.activations.resources import ActivationSettings
from tessera.orchestration.defs.campaigns.resources import CampaignCatalog
from tessera.orchestration.defs.partitions import WAREHOUSE_POOL
from tessera.orchestration.defs.resources import DataStorage

#: One journey tick at a time writes the journey state store (limit 1 like every pool).
JOURNEY_POOL = "journey_state"


@dg.op(pool=WAREHOUSE_POOL)
def journey_warehouse_snapshot(
    context: dg.OpExecutionContext,
    warehouse: DuckDBResource,
    storage: DataStorage,
    campaign_catalog: CampaignCatalog,
) -> None:
    """Copy what the journey rules read (customers, suppressions, daily contacts) to files."""
    catalog = campaign_catalog.load()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with warehouse.get_connection() as con:
        snap = take_snapshot(con, catalog, storage.landing_dir, now)
    write_snapshot(JourneyPaths.of(storage.root), snap)
    context.log.info(
        f"journey snapshot of {snap.as_of}: {len(snap.customers)} customers, "
        f"{len(snap.suppressions)} suppressions, {len(snap.daily_history)} daily contacts"
    )


@dg.op(pool=JOURNEY_POOL)
def journey_tick_step(
    context: dg.OpExecutionContext,
    storage: DataStorage,
    campaign_catalog: CampaignCatalog,
    activation: ActivationSettings,
) -> None:
    """Evaluate new events and due steps of every trigger and send, exactly once."""
    catalog = campaign_catalog.load()
    settings = activation.settings()
    paths = JourneyPaths.of(storage.root)
    snap = read_snapshot(paths)
    con = store.connect(str(paths.state_path))
    try:
        report = run_tick(
            con,
            catalog,
            snap,
            paths=paths,
            providers=settings.build_providers(storage.outbox_dir),
            now=dt.datetime.now(dt.UTC),
            environment=settings.environment,
            policy=settings.retry_policy(),
            fresh_suppressions=landed_suppressions(con, storage.landing_dir, snap),
            kill_switch=settings.kill_switch,
            timezone=activation.timezone,
        )
    finally:
        con.close()
    context.log.info(
        f"journeys: {report.ingested} events, entries {report.entries}, exits {report.exits}, "
        f"decisions {report.decisions}, sent {report.sent}, suppressed {report.suppressed}, "
        f"failed {report.failed}, next due {report.next_due}"
    )


@dg.job(description="Copy the journeys' inputs from the warehouse (a short read in its pool).")
def journey_snapshot():
    journey_warehouse_snapshot()


@dg.job(description="One journey tick: enter, exit, decide due steps and send (sensor-run).")
def journey_tick():
    journey_tick_step()
