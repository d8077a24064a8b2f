"""`tessera run`: materialize the daily pipeline for the last N campaign dates, in date order."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

from tessera.settings import Settings, environment, load_settings

log = logging.getLogger(__name__)

#: The instance settings `tessera run` and `make dev` share: one writer of DuckDB at a time.
DAGSTER_YAML = """\
# Written by `tessera run`. Only one step at a time may write the DuckDB warehouse.
concurrency:
  pools:
    granularity: op
    default_limit: 1
telemetry:
  enabled: false
# Tessera's own log lines (quality verdicts, sends, ...) are kept in each run's logs in the UI.
python_logs:
  python_log_level: INFO
  managed_python_loggers:
    - tessera
"""


def ensure_dagster_home(settings: Settings) -> Path:
    """Point DAGSTER_HOME at data/dagster_home (unless set) and give it the pool settings."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(settings.paths.dagster_home)))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    # Ours (by its first line) from an earlier version is brought up to date; a file of the
    # user's own is left alone.
    mine = config.exists() and config.read_text().startswith(DAGSTER_YAML.splitlines()[0])
    if not config.exists() or (mine and config.read_text() != DAGSTER_YAML):
        config.write_text(DAGSTER_YAML)
    return home


def campaign_dates(end: dt.date, days: int) -> list[str]:
    """The `days` campaign dates ending at `end`, oldest first."""
    if days < 1:
        raise ValueError(f"--days must be at least 1, got {days}")
    return [(end - dt.timedelta(days=i)).isoformat() for i in range(days - 1, -1, -1)]


def ensure_demo_data(settings: Settings, end: dt.date) -> bool:
    """Generate the demo shop when the landing folder is missing; True if it generated."""
    if settings.landing_dir.exists():
        return False
    from tessera.demo.generator import generate_shop

    log.info(
        "no landing data in %s: generating the demo shop (%s customers, seed %s)",
        settings.landing_dir,
        f"{settings.demo_customers:,}",
        settings.demo_seed,
    )
    generate_shop(
        settings.landing_dir,
        customers=settings.demo_customers,
        seed=settings.demo_seed,
        start=end - dt.timedelta(days=730),
        end=end,
    )
    return True


@contextlib.contextmanager
def local_sink(settings: Settings) -> Iterator[str | None]:
    """Run the local provider sink (SendGrid/Twilio look-alike) for the run, when it exists."""
    try:
        from tessera.activations.sink import running_sink
    except ImportError:
        yield None
        return
    # The catch-up is unattended: the day's reviewed messages go out without a click, unless
    # the caller said otherwise.
    auto_send = os.environ.get("TESSERA_AUTO_SEND", "true")
    with (
        running_sink(settings.data_dir) as sink,
        environment(TESSERA_SINK_URL=sink.url, TESSERA_AUTO_SEND=auto_send),
    ):
        yield sink.url


def catch_up_selection(defs, job_name: str) -> list:
    """Assets to rebuild for the 2nd..Nth date of a catch-up.

    The first date refreshes everything. Later dates need the per-date assets, the
    campaign-response loop (yesterday's provider events feed today's features and suppressions),
    and the model and activation assets that keep their own cadence inside (weekly retrain,
    provider events). History-wide tables of the shop's own data and the training snapshots were
    built by the first date and are not rebuilt.
    """
    import dagster as dg

    from tessera.orchestration.defs.sources.assets import RAW_ASSET_KEYS
    from tessera.orchestration.defs.warehouse.assets import model_key

    graph = defs.resolve_asset_graph()
    feedback = dg.AssetSelection.assets(RAW_ASSET_KEYS["campaign_responses"]).downstream()
    feedback = feedback.resolve(graph)
    keep = {
        k
        for k in graph.get_all_asset_keys()
        if graph.get(k).partitions_def
        or k in feedback
        or graph.get(k).group_name in ("ml", "activations")
    }
    keep.discard(model_key("customer_feature_snapshots"))
    job_keys = set(defs.resolve_job_def(job_name).asset_layer.selected_asset_keys)
    return sorted(keep & job_keys)


@contextlib.contextmanager
def _dagster_propagating(propagate: bool) -> Iterator[None]:
    """Whether Dagster's log records also reach the root handler (they print twice if so)."""
    logger = logging.getLogger("dagster")
    before = logger.propagate
    logger.propagate = propagate
    try:
        yield
    finally:
        logger.propagate = before


class _BelowError(logging.Filter):
    """Lets through what is below ERROR: failures are summarised by `tessera run` itself.

    Also holds back dagster-dbt's note that a dbt test is logged as an observation: dbt runs
    the tests of what it builds also when their asset is another step's (the landing tables'
    uniqueness tests, a later date's tests on history-wide models), and those results are
    observations by design (the UI shows them).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if "instead of an `AssetCheckResult` for dbt test" in record.getMessage():
            return False
        return record.levelno < logging.ERROR


class _OnlyRunLines(logging.Filter):
    """The terminal's share of the root log while a job runs: `tessera run`'s own lines and the
    libraries' warnings. Tessera's loggers are Dagster-managed (dagster.yaml): their records
    reach the run's logs and, from WARNING, Dagster's console, so they are not printed twice."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == __name__:
            return True
        ours = record.name == "tessera" or record.name.startswith("tessera.")
        return record.levelno >= logging.WARNING and not ours


@contextlib.contextmanager
def _terminal_quiet(quiet: bool) -> Iterator[None]:
    handlers = list(logging.getLogger().handlers) if quiet else []
    only = _OnlyRunLines()
    for handler in handlers:
        handler.addFilter(only)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(only)


def _quiet_console(init_context):  # noqa: ANN001, ANN202 - Dagster's logger protocol
    from dagster._utils.log import create_console_logger

    logger = create_console_logger(
        name=init_context.logger_config["name"], level=init_context.logger_config["log_level"]
    )
    for handler in logger.handlers:
        handler.addFilter(_BelowError())
    return logger


def quiet_console_logger():  # noqa: ANN201 - dg.LoggerDefinition (Dagster imports lazily)
    """Dagster's console logger without its ERROR lines (`tessera run` summarises a failure)."""
    import dagster as dg

    return dg.LoggerDefinition(
        _quiet_console,
        config_schema={
            "log_level": dg.Field(str, is_required=False, default_value="INFO"),
            "name": dg.Field(str, is_required=False, default_value="dagster"),
        },
        description="Dagster's console logger without ERROR lines (tessera run summarises them).",
    )


def _innermost(error):  # noqa: ANN001, ANN202 - dagster's SerializableErrorInfo
    """The user's own exception inside Dagster's wrappers (the last cause in the chain)."""
    while error.cause is not None:
        error = error.cause
    return error


def _condense(message: str, limit: int = 700) -> str:
    """A multi-line message (dbt's list of failing nodes) as one line of at most ``limit``."""
    lines = [ln.strip().removeprefix("- ") for ln in message.strip().splitlines() if ln.strip()]
    text = "; ".join(lines)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def failure_reason(result) -> tuple[str, str]:  # noqa: ANN001 - ExecuteInProcessResult
    """(failed step, why) of a failed run: a blocking check's failing rules, else the error."""
    import dagster as dg

    failures = [e for e in result.all_events if e.is_step_failure]
    steps = ", ".join(dict.fromkeys(e.step_key for e in failures)) or "an unknown step"
    blocking = [
        ev
        for ev in result.get_asset_check_evaluations()
        if not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR
    ]
    if blocking:
        reasons = []
        for ev in blocking:
            summary = ev.metadata.get("blocking_summary")
            text = (summary.value if summary is not None else "") or ev.description or ""
            name = f"{ev.asset_key.to_user_string()} {ev.check_name}"
            reasons.append(f"blocking check {name}: {text}" if text else f"blocking check {name}")
        return steps, _condense(" | ".join(reasons))
    if failures:
        error = _innermost(failures[0].step_failure_data.error)
        if error is not None:
            # The message starts with the exception's qualified name; ours name the file anyway.
            message = error.message.split(": ", 1)[-1] if ": " in error.message else error.message
            return steps, _condense(message)
    return steps, "the run failed without a step failure (see the Dagster UI)"


def not_run_steps(result, instance) -> list[str]:  # noqa: ANN001 - Dagster objects
    """Steps of the run's plan that never started (skipped after a failure)."""
    plan = instance.get_execution_plan_snapshot(result.dagster_run.execution_plan_snapshot_id)
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    return sorted(step.key for step in plan.steps if step.key not in started)


def warehouse_summary(warehouse: Path) -> list[tuple[str, str, int]]:
    """(schema, table, rows) for every table in the warehouse, read-only."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "select schema_name, table_name, estimated_size from duckdb_tables() "
            "order by schema_name, table_name"
        ).fetchall()
        rows = []
        for schema, table, _ in tables:
            n = con.execute(f'select count(*) from "{schema}"."{table}"').fetchall()[0][0]
            rows.append((schema, table, n))
    return rows


def run(days: int, end: dt.date | None, full_each_day: bool) -> int:
    settings = load_settings()
    end = end or dt.datetime.now(ZoneInfo(settings.timezone)).date()
    dates = campaign_dates(end, days)
    ensure_dagster_home(settings)
    generated = ensure_demo_data(settings, end)

    import dagster as dg

    from tessera.orchestration.definitions import defs as load_defs

    started = time.monotonic()
    # Every step's events stay in the instance (the UI shows them); the terminal gets one line
    # per date and anything that went wrong, unless -v asked for everything.
    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)
    console_level = "DEBUG" if verbose else "WARNING"
    with (
        local_sink(settings) as sink_url,
        _dagster_propagating(verbose),
        _terminal_quiet(not verbose),
    ):
        if sink_url:
            log.info("local provider sink listening on %s", sink_url)
        with warnings.catch_warnings():
            # Dagster warns on every load that the daily job mixes partitioned and unpartitioned
            # assets; it does so on purpose (see orchestration/defs/pipeline/jobs.py). A sensor
            # over several jobs (journey_queue) sets an internal beta parameter.
            warnings.filterwarnings("ignore", message=".*varying BackfillPolicies")
            warnings.filterwarnings("ignore", message="Parameter `owners`")
            defs = load_defs()
            job = defs.resolve_job_def("daily_pipeline")
            # Without -v, a failed date is one summary line of ours, not Dagster's ERROR lines (the
            # stack trace, one line per step it skipped); the UI keeps all of them.
            run_job = job if verbose else job.with_logger_defs({"console": quiet_console_logger()})
            later = None if full_each_day else catch_up_selection(defs, "daily_pipeline")
        instance = dg.DagsterInstance.get()
        for i, date in enumerate(dates):
            t0 = time.monotonic()
            selection = None if (i == 0 or later is None) else later
            result = run_job.execute_in_process(
                partition_key=date,
                instance=instance,
                run_config={"loggers": {"console": {"config": {"log_level": console_level}}}},
                asset_selection=selection,
                tags={"tessera/trigger": "tessera run"},
                raise_on_error=False,
            )
            if not result.success:
                step, reason = failure_reason(result)
                skipped = len(not_run_steps(result, instance))
                log.error(
                    "campaign date %s failed at %s: %s\n  %s; fix the cause and rerun "
                    "`tessera run` (reruns are idempotent). Stack trace: `tessera -v run`, or the "
                    "Dagster UI (`make dev`), run %s.",
                    date,
                    step,
                    reason,
                    f"{skipped} later step(s) not run" if skipped else "no step was skipped",
                    result.run_id,
                )
                return 1
            log.info("campaign date %s done in %.1fs", date, time.monotonic() - t0)

    summary = warehouse_summary(settings.warehouse_path)
    width = max((len(f"{s}.{t}") for s, t, _ in summary), default=10)
    lines = [
        "",
        f"Tessera: {len(dates)} campaign dates built ({dates[0]} .. {dates[-1]}) "
        f"in {time.monotonic() - started:.0f}s" + (" (demo shop generated)" if generated else ""),
        "",
        *(f"  {f'{s}.{t}':<{width}}  {n:>12,}" for s, t, n in summary),
        "",
        f"Warehouse: {settings.warehouse_path}",
        f"Landing data: {settings.landing_dir}",
        "Open the Dagster UI: `make dev`, then http://127.0.0.1:3000 (asset graph, runs, checks).",
        f"Query it: duckdb {settings.warehouse_path} (read-only while the UI runs)",
    ]
    print("\n".join(lines))  # noqa: T201 - the command's own report
    return 0


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the daily pipeline for the last N campaign dates",
        description="Materialize the whole daily pipeline for the last N campaign dates in order "
        "(generating the demo shop first when data/landing is missing), then print a summary.",
    )
    parser.add_argument("--days", type=int, default=14, help="how many campaign dates (default 14)")
    parser.add_argument("--end", type=_date, help="the last campaign date (default: today)")
    parser.add_argument(
        "--full-each-day",
        action="store_true",
        help="refresh every history-wide asset on every date, as the daily schedule does",
    )
    parser.set_defaults(func=lambda a: run(a.days, a.end, a.full_each_day))
