"""A failed run alerts ops through the webhook provider; the daily assets' freshness checks."""

from __future__ import annotations

import os

import dagster as dg

from tessera.activations.ops_alerts import RunFailure, alert_provider, send_alert
from tessera.orchestration.defs.ops.freshness import FRESH_DAILY_ASSETS, FRESHNESS_DEADLINE_CRON
from tessera.settings import load_settings


def _root_cause(error) -> str:
    """The innermost error's message: Dagster wraps the step's own exception ("Error occurred
    while executing op ..."), and the reason a person can act on is the one inside."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return error.message.strip()


def failure_from_context(context: dg.RunFailureSensorContext) -> RunFailure:
    """What the alert says about the failed run of ``context``."""
    run = context.dagster_run
    steps = tuple(
        dict.fromkeys(e.step_key for e in context.get_step_failure_events() if e.step_key)
    )
    errors = [
        _root_cause(e.event_specific_data.error)
        for e in context.get_step_failure_events()
        if getattr(e.event_specific_data, "error", None) is not None
    ]
    error = "\n".join(dict.fromkeys(errors)) or (context.failure_event.message or "")
    base = (os.environ.get("TESSERA_DAGSTER_URL") or "").rstrip("/")
    return RunFailure(
        job=run.job_name,
        run_id=run.run_id,
        partition=run.tags.get("dagster/partition"),
        failed_steps=steps,
        error=error,
        run_url=f"{base}/runs/{run.run_id}" if base else None,
    )


@dg.run_failure_sensor(
    name="ops_run_failure_alert",
    description="Posts a signed webhook to TESSERA_OPS_WEBHOOK_URL for every failed run "
    "(job, date, failed steps, error, link); without that variable it only logs.",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
def ops_run_failure_alert(context: dg.RunFailureSensorContext) -> None:
    failure = failure_from_context(context)
    provider = alert_provider()
    if provider is None:
        context.log.info(
            "run %s (%s) failed; no alert sent: TESSERA_OPS_WEBHOOK_URL is not set",
            failure.run_id,
            failure.job,
        )
        return
    # A provider error fails this sensor tick, and Dagster retries the same run on the next one.
    send_alert(failure, provider)
    context.log.info("alerted ops about run %s (%s)", failure.run_id, failure.job)


@dg.definitions
def ops() -> dg.Definitions:
    """Freshness checks need the timezone: read the settings when the definitions load."""
    checks = dg.build_time_partition_freshness_checks(
        assets=list(FRESH_DAILY_ASSETS),
        deadline_cron=FRESHNESS_DEADLINE_CRON,
        timezone=load_settings().timezone,
        severity=dg.AssetCheckSeverity.WARN,
    )
    return dg.Definitions(
        asset_checks=checks,
        sensors=[
            ops_run_failure_alert,
            dg.build_sensor_for_freshness_checks(
                freshness_checks=checks, name="daily_freshness_checks"
            ),
        ],
    )
