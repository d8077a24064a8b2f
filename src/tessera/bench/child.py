"""The work the benchmark measures, run in a child process: generate, the daily job, the matrix."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("tessera.bench.child")


def generate(args: argparse.Namespace) -> dict[str, Any]:
    from tessera.demo.generator import generate_shop

    end = dt.date.fromisoformat(args.end)
    t0 = time.perf_counter()
    summary = generate_shop(
        Path(args.out_dir),
        customers=args.customers,
        seed=args.seed,
        start=end - dt.timedelta(days=args.days),
        end=end,
    )
    rows = dict(getattr(summary, "rows", {}) or {})
    return {"seconds": time.perf_counter() - t0, "rows": rows}


def _step_records(instance: Any, run_id: str) -> list[dict[str, Any]]:
    """Per step: start/end wall-clock times, status, assets materialized, checks evaluated."""
    steps: dict[str, dict[str, Any]] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or not entry.step_key:
            continue
        step = steps.setdefault(
            entry.step_key,
            {"step_key": entry.step_key, "start": None, "end": None, "status": "running"},
        )
        step.setdefault("assets", {})
        step.setdefault("checks", [])
        kind = event.event_type_value
        if kind == "STEP_START":
            step["start"] = entry.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
            step["end"] = entry.timestamp
            step["status"] = kind.removeprefix("STEP_").lower()
        elif kind == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            count = mat.metadata.get("dagster/row_count")
            step["assets"][mat.asset_key.to_user_string()] = (
                int(count.value) if count is not None else None
            )
        elif kind == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            step["checks"].append(
                {
                    "asset": evaluation.asset_key.to_user_string(),
                    "check": evaluation.check_name,
                    "passed": bool(evaluation.passed),
                }
            )
    return [s for s in steps.values() if s["start"] is not None]


def pipeline(args: argparse.Namespace) -> dict[str, Any]:
    import dagster as dg

    t0 = time.perf_counter()
    from tessera.orchestration.definitions import defs as load_defs

    defs = load_defs()
    job = defs.resolve_job_def("daily_pipeline")
    graph = defs.resolve_asset_graph()
    keys = job.asset_layer.selected_asset_keys
    assets = {
        k.to_user_string(): {
            "group": graph.get(k).group_name,
            "parents": sorted(p.to_user_string() for p in graph.get(k).parent_keys),
        }
        for k in keys
    }
    loaded = time.perf_counter() - t0
    instance = dg.DagsterInstance.ephemeral()
    started = time.time()
    result = job.execute_in_process(
        partition_key=args.date,
        instance=instance,
        raise_on_error=False,
        tags={"tessera/trigger": "bench"},
    )
    finished = time.time()
    failed = [e.step_key for e in result.all_events if e.is_step_failure]
    return {
        "success": result.success,
        "failed_steps": failed,
        "load_seconds": loaded,
        "run_start": started,
        "run_end": finished,
        "assets": assets,
        "steps": _step_records(instance, result.run_id),
    }


def matrix(args: argparse.Namespace) -> dict[str, Any]:
    from tessera.campaigns.bench import run_matrix_benchmark

    return run_matrix_benchmark(args.customers, args.campaigns, args.seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tessera.bench.child")
    parser.add_argument("--result", required=True, help="where to write the JSON result")
    parser.add_argument("--profile", help="write a pyinstrument HTML profile here")
    sub = parser.add_subparsers(dest="what", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--out-dir", required=True)
    g.add_argument("--customers", type=int, required=True)
    g.add_argument("--seed", type=int, required=True)
    g.add_argument("--end", required=True)
    g.add_argument("--days", type=int, required=True)
    g.set_defaults(fn=generate)
    p = sub.add_parser("pipeline")
    p.add_argument("--date", required=True)
    p.set_defaults(fn=pipeline)
    m = sub.add_parser("matrix")
    m.add_argument("--customers", type=int, required=True)
    m.add_argument("--campaigns", type=int, required=True)
    m.add_argument("--seed", type=int, required=True)
    m.set_defaults(fn=matrix)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    try:
        out = args.fn(args)
    finally:
        if profiler is not None:
            profiler.stop()
            Path(args.profile).write_text(profiler.output_html())
            text = profiler.output_text(unicode=False, color=False, show_all=False)
            Path(args.profile).with_suffix(".txt").write_text(text)
    Path(args.result).write_text(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
