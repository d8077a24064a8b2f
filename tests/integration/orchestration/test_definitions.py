"""The one Definitions loads, validates and wires every domain onto the shared partitions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from tessera.orchestration.definitions import defs as load_defs

ROOT = Path(__file__).resolve().parents[3]


def test_definitions_load_with_groups_and_the_daily_job() -> None:
    defs = load_defs()
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"raw/customers", "raw/orders", "marts/dim_customers", "marts/customer_features"} <= keys
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert {"sources", "staging", "marts"} <= groups
    assert defs.resolve_job_def("daily_pipeline") is not None
    schedule = defs.resolve_schedule_def("daily_pipeline_schedule")
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_daily_assets_share_one_partitions_definition() -> None:
    from tessera.orchestration.defs.partitions import daily_partitions

    graph = load_defs().resolve_asset_graph()
    partitioned = [graph.get(k) for k in graph.get_all_asset_keys() if graph.get(k).partitions_def]
    assert partitioned, "no daily asset found"
    assert all(node.partitions_def == daily_partitions for node in partitioned)


def test_dagster_definitions_validate_is_clean() -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-w",
            "workspace.yaml",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_schedule_requests_todays_partition_once_per_date() -> None:
    import datetime as dt

    from tessera.orchestration.defs.pipeline.jobs import build_daily_pipeline_schedule

    daily_pipeline_schedule = build_daily_pipeline_schedule("UTC")
    when = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)
    request = daily_pipeline_schedule(dg.build_schedule_context(scheduled_execution_time=when))
    assert request.partition_key == "2026-03-02"
    assert request.run_key == "2026-03-02"


def test_schedules_read_the_timezone_when_the_definitions_load(monkeypatch) -> None:
    # The modules are imported by now (earlier tests, this file's imports): the setting still counts.
    import tessera.orchestration.defs.ml.schedules  # noqa: F401
    import tessera.orchestration.defs.pipeline.jobs  # noqa: F401

    monkeypatch.setenv("TESSERA_TIMEZONE", "Europe/Berlin")
    defs = load_defs()
    for name in ("daily_pipeline_schedule", "weekly_model_retrain_schedule"):
        assert defs.resolve_schedule_def(name).execution_timezone == "Europe/Berlin"


def test_definitions_validate_without_the_venv_on_path() -> None:
    """`.venv/bin/dagster definitions validate` on a shell whose PATH lacks the venv's bin."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != venv_bin
    )
    env = {**os.environ, "PATH": path or "/usr/bin:/bin"}
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        [str(Path(venv_bin) / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
