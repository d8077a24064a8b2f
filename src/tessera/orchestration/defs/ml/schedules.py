"""The weekly retrain: the models and their evaluation report, every Monday at 03:00."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from tessera.orchestration.defs.ml.assets import model_evaluation, models
from tessera.settings import load_settings

weekly_model_retrain = dg.define_asset_job(
    "weekly_model_retrain",
    selection=dg.AssetSelection.assets(models, model_evaluation),
    description="Retrain churn and value models, evaluate them against the baselines, promote.",
)


def build_weekly_model_retrain_schedule(timezone: str) -> dg.ScheduleDefinition:
    """Mondays 03:00 in ``timezone`` (the settings' TESSERA_TIMEZONE)."""

    @dg.schedule(
        job=weekly_model_retrain,
        cron_schedule="0 3 * * 1",
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def weekly_model_retrain_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        """Every Monday: train with cut-off = that day (capped at the data end), one run per week."""
        tz = ZoneInfo(timezone)
        scheduled = context.scheduled_execution_time or dt.datetime.now(tz)
        key = scheduled.astimezone(tz).date().isoformat()
        return dg.RunRequest(
            run_key=f"retrain-{key}",
            run_config={
                "ops": {models.op.name: {"config": {"as_of": key, "retrain_every_days": 1}}}
            },
        )

    return weekly_model_retrain_schedule


@dg.definitions
def retrain() -> dg.Definitions:
    """Read the settings when the definitions load (not when this module is imported)."""
    timezone = load_settings().timezone
    return dg.Definitions(
        jobs=[weekly_model_retrain], schedules=[build_weekly_model_retrain_schedule(timezone)]
    )
