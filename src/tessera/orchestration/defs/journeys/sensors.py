"""Sensor over the trigger queue: a tick run per batch of new events or due steps (30 s)."""

import datetime as dt

import dagster as dg

from tessera.journeys.intake import queue_files
from tessera.journeys.paths import JourneyPaths
from tessera.journeys.snapshot import snapshot_age_s
from tessera.orchestration.defs.journeys.jobs import journey_snapshot, journey_tick
from tessera.orchestration.defs.resources import DataStorage

#: Seconds between sensor evaluations (Dagster's minimum; issue 14: every 30 s by default).
INTERVAL_S = 30
#: A snapshot older than this is refreshed (a run of its own: the tick does not wait for it).
SNAPSHOT_MAX_AGE_S = 600
_ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _last_failed(context: dg.SensorEvaluationContext, job_name: str) -> bool:
    """Whether the newest run of the job failed: its events are still to be evaluated (the
    tick's own cursor in the state store did not move), so a tick is requested again."""
    runs = context.instance.get_runs(filters=dg.RunsFilter(job_name=job_name), limit=1)
    return bool(runs) and runs[0].status == dg.DagsterRunStatus.FAILURE


def _active(context: dg.SensorEvaluationContext, job_name: str) -> bool:
    runs = context.instance.get_runs(
        filters=dg.RunsFilter(job_name=job_name, statuses=_ACTIVE), limit=1
    )
    return bool(runs)


def _due(paths: JourneyPaths, now: dt.datetime) -> str | None:
    """The earliest pending step's due time when it has passed (its text), else None."""
    if not paths.next_due_path.exists():
        return None
    text = paths.next_due_path.read_text(encoding="utf-8").strip()
    return text if text and dt.datetime.fromisoformat(text) <= now else None


@dg.sensor(
    jobs=[journey_tick, journey_snapshot],
    minimum_interval_seconds=INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def journey_queue(context: dg.SensorEvaluationContext, storage: DataStorage) -> dg.SensorResult:
    """Requests a journey tick when new events are queued or a step is due (cursor: newest
    queue file), and a warehouse snapshot when it is missing or stale. No second tick is
    requested while one is queued or running (the state store has one writer)."""
    paths = JourneyPaths.of(storage.root)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    requests = []
    age = snapshot_age_s(paths, now)
    if (age is None or age > SNAPSHOT_MAX_AGE_S) and not _active(context, journey_snapshot.name):
        bucket = int(now.timestamp() // SNAPSHOT_MAX_AGE_S)
        requests.append(dg.RunRequest(job_name=journey_snapshot.name, run_key=f"snapshot:{bucket}"))
    if age is None:
        return dg.SensorResult(
            run_requests=requests, skip_reason=None if requests else "no snapshot"
        )
    files = queue_files(storage.root)
    newest = files[-1].name if files else ""
    cursor = context.cursor or ""
    due = _due(paths, now)
    retry = _last_failed(context, journey_tick.name)
    if (newest > cursor or due or retry) and not _active(context, journey_tick.name):
        # A due or retried tick is keyed per minute: one that failed is requested again (at
        # most once a minute), and new events never wait for the next event after a failure.
        minute = int(now.timestamp() // 60) if (due or retry) else ""
        requests.append(
            dg.RunRequest(job_name=journey_tick.name, run_key=f"tick:{newest}:{due or ''}:{minute}")
        )
        cursor = max(newest, cursor)
    if not requests:
        return dg.SensorResult(skip_reason="no new events and no due steps", cursor=cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)
