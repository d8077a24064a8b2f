"""The journeys' results beside campaign_results: funnel per trigger and step, lift vs control."""

import datetime as dt

import dagster as dg

from tessera.journeys import store
from tessera.journeys.paths import JourneyPaths
from tessera.journeys.results import trigger_funnel, trigger_results
from tessera.orchestration.defs.journeys.jobs import JOURNEY_POOL
from tessera.orchestration.defs.resources import DataStorage
from tessera.reporting import markdown_table

RESULT_COLUMNS = [
    "campaign_id",
    "treatment_n",
    "control_n",
    "treatment_rate",
    "control_rate",
    "abs_lift",
    "abs_lift_ci_low",
    "abs_lift_ci_high",
    "treatment_revenue_per_customer",
    "control_revenue_per_customer",
]


@dg.asset(
    key=["activations", "journey_results"],
    group_name="activations",
    kinds={"duckdb", "python"},
    pool=JOURNEY_POOL,
    # not part of the daily job (which must not wait on the journey state store): materialize
    # it from the UI or with the job journey_results_job
    tags={"tessera/manual": "true"},
)
def journey_results(context: dg.AssetExecutionContext, storage: DataStorage):
    """Per trigger and step: entries, exits before the message (and why), messages, skips (and
    why); per trigger: conversions (order events within 7 days of entry) and revenue of treated
    vs control entries, with 95% intervals (the daily campaigns' measurement). Reads the journey
    state store (data/journeys/state.duckdb), not the warehouse."""
    paths = JourneyPaths.of(storage.root)
    con = store.connect(str(paths.state_path))
    try:
        funnel = trigger_funnel(con)
        results = trigger_results(con, dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1))
        entries = con.execute("select count(*) from journeys.entries").fetchall()[0][0]
    finally:
        con.close()
    context.log.info(f"{entries} journey entries, {int(funnel['sent'].sum())} messages sent")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(funnel),
            "entries": int(entries),
            "funnel": dg.MetadataValue.md(markdown_table(funnel, 60)),
            "results": dg.MetadataValue.md(markdown_table(results[RESULT_COLUMNS], 60)),
        }
    )


journey_results_job = dg.define_asset_job(
    "journey_results_job",
    selection=dg.AssetSelection.assets(journey_results),
    description="Refresh the journeys' funnel and results (reads the journey state store).",
)
