"""Sensor: a new provider-event file in the landing folder triggers `provider_events`."""

import dagster as dg

from tessera.activations.events import landed_event_files
from tessera.orchestration.defs.activations.assets import deliveries, provider_events, send_approval
from tessera.orchestration.defs.resources import DataStorage

provider_events_job = dg.define_asset_job(
    "ingest_provider_events",
    selection=dg.AssetSelection.assets(provider_events),
    description="Rebuild activations.provider_events after the event endpoint landed new files.",
)

approve_and_send = dg.define_asset_job(
    "approve_and_send",
    selection=dg.AssetSelection.assets(send_approval, deliveries),
    description="Approve the reviewed outbound messages of a date and send them (exactly once).",
)


@dg.sensor(
    job=provider_events_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def provider_event_files(
    context: dg.SensorEvaluationContext, storage: DataStorage
) -> dg.SensorResult:
    """Requests one ingest run per batch of new event files (cursor: newest file name)."""
    files = landed_event_files(storage.landing_dir)
    newest = files[-1].name if files else None
    if newest is None or newest <= (context.cursor or ""):
        return dg.SensorResult(skip_reason="no new provider event files")
    new = [f for f in files if f.name > (context.cursor or "")]
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=newest, tags={"tessera/new_event_files": str(len(new))})
        ],
        cursor=newest,
    )
