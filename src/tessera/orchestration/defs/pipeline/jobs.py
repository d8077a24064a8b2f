"""The daily pipeline job and its 06:00 schedule: every asset, for campaign date D."""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from tessera.orchestration.defs.ops.freshness import FRESHNESS_CHECK_KEYS
from tessera.orchestration.defs.partitions import daily_partitions
from tessera.settings import SettingsError, load_settings

#: Everything: landing -> warehouse -> checks -> scores -> segments -> matrix -> activations.
#: Unpartitioned assets (landing, history-wide marts) are refreshed in the same run first.
#: Assets tagged `tessera/manual` (the send approval) are a person's decision, never the job's.
#: The freshness checks are the freshness sensor's (they ask "is today built?", not this run).
daily_pipeline = dg.define_asset_job(
    "daily_pipeline",
    selection=dg.AssetSelection.all()
    - dg.AssetSelection.tag("tessera/manual", "true")
    - dg.AssetSelection.checks(*FRESHNESS_CHECK_KEYS),
    partitions_def=daily_partitions,
    description="The whole daily run for campaign date D (data strictly before D 00:00).",
)


def build_daily_pipeline_schedule(timezone: str) -> dg.ScheduleDefinition:
    """The 06:00 schedule of ``daily_pipeline`` in ``timezone`` (the settings' TESSERA_TIMEZONE)."""

    @dg.schedule(
        job=daily_pipeline,
        cron_schedule="0 6 * * *",
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def daily_pipeline_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        """Each morning at 06:00, build campaign date D = today (data up to today 00:00).

        `run_key` = the date, so a repeated tick (restart, catch-up) never runs a date twice.
        """
        tz = ZoneInfo(timezone)
        scheduled = context.scheduled_execution_time or dt.datetime.now(tz)
        key = scheduled.astimezone(tz).date().isoformat()
        return dg.RunRequest(partition_key=key, run_key=key, tags={"tessera/trigger": "schedule"})

    return daily_pipeline_schedule


def build_executor(name: str) -> dg.ExecutorDefinition | None:
    """The executor of every job of the code location, from ``TESSERA_EXECUTOR``.

    ``None`` keeps Dagster's default (multiprocess). ``k8s`` runs each step in its own
    Kubernetes pod (dagster-k8s, the ``deploy`` extra); the instance's op pool limit of 1 still
    lets one step at a time write the warehouse.
    """
    if name == "in_process":
        return dg.in_process_executor
    if name == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError:
            raise SettingsError(
                "TESSERA_EXECUTOR=k8s needs dagster-k8s: install Tessera with its deploy extra "
                "(pip install 'tessera[deploy]'; the image of deploy/Dockerfile has it)"
            ) from None
        return k8s_job_executor
    return None


@dg.definitions
def pipeline() -> dg.Definitions:
    """Read the settings when the definitions load (not when this module is imported)."""
    settings = load_settings()
    return dg.Definitions(
        jobs=[daily_pipeline],
        schedules=[build_daily_pipeline_schedule(settings.timezone)],
        executor=build_executor(settings.executor),
    )
