"""`python -m tessera.bench.run --sizes 10k,100k,1m`: time the daily run per stage against DuckDB/HTTP floors."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import importlib.util
import json
import logging
import os
import platform
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tessera.bench import floors, report
from tessera.bench.measure import ChildRun, run_child

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_SIZES = "10k,100k,1m"
#: A fixed campaign date keeps the cached shops valid across days (and inside the partitions).
DEFAULT_END = dt.date(2026, 6, 1)
HISTORY_DAYS = 730
#: Minutes of the journey load in `make bench`: short enough to bear; the issue's figure is 5.
DEFAULT_JOURNEY_MINUTES = 2.0
#: The journeys sensor's default interval (orchestration/defs/journeys/sensors.py INTERVAL_S).
JOURNEY_INTERVAL_S = 30.0


def _has(module: str, attr: str | None = None) -> bool:
    """Whether a stage's code has landed (a module, optionally with a given attribute)."""
    try:
        if importlib.util.find_spec(module) is None:
            return False
    except ModuleNotFoundError:
        return False
    if attr is None:
        return True
    # Import only the light library modules here (never Dagster): they define the attribute.
    try:
        mod = __import__(module, fromlist=[attr])
    except Exception as exc:  # a half-written module counts as not available, with the reason
        log.warning("%s does not import: %s", module, exc)
        return False
    return hasattr(mod, attr)


def _stage(name: str, status: str, note: str = "", **values: Any) -> dict[str, Any]:
    stage = dict.fromkeys(report.STAGE_FIELDS)
    stage.update(stage=name, status=status, note=note, floor="")
    stage.update(values)
    stage["ratio"] = report.ratio(stage["seconds"], stage["floor_seconds"])
    stage["rows_per_second"] = report.rows_per_second(stage["rows"], stage["seconds"])
    return stage


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    # The children must import the checkout's packages, bench included.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    # dagster-dbt looks for `dbt` on PATH: the interpreter's own bin (the venv) comes first.
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(filter(None, [bin_dir, env.get("PATH")]))
    return env


def _child(
    what: list[str], work: Path, name: str, env: dict[str, str], profile: bool = False
) -> tuple[ChildRun, dict[str, Any] | None]:
    result_path = work / f"{name}.json"
    result_path.unlink(missing_ok=True)
    args = [sys.executable, "-m", "tessera.bench.child", "--result", str(result_path)]
    if profile:
        args += ["--profile", str(work / f"{name}-profile.html")]
    run = run_child(args + what, _child_env(env), ROOT, work / f"{name}.log")
    out = json.loads(result_path.read_text()) if result_path.exists() else None
    return run, out


# ------------------------------------------------------------------------------------------------
# generate (cached)
# ------------------------------------------------------------------------------------------------


def generator_fingerprint() -> str:
    """A hash of the generator's source (its module and the table modules beside it, in
    tessera/demo): a changed generator invalidates the cached shops."""
    spec = importlib.util.find_spec("tessera.demo.generator")
    if spec is None or not spec.origin:
        return ""
    h = hashlib.sha256()
    for path in sorted(p for p in Path(spec.origin).parent.glob("*.py") if p.name != "cli.py"):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def ensure_shop(
    cache: Path, customers: int, seed: int, end: dt.date, repeats: int
) -> tuple[dict[str, Any], Path | None]:
    """The generate stage: reuse `cache/landing` or generate it in a measured child process."""
    landing, meta_path = cache / "landing", cache / "generate.json"
    fingerprint = generator_fingerprint()
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if landing.is_dir() and meta.get("generator") == fingerprint:
        return _stage(
            "generate",
            report.CACHED,
            note=f"cached shop {cache.name}: figures from when it was generated ({meta['date']})",
            seconds=meta["seconds"],
            peak_rss_bytes=meta["peak_rss_bytes"],
            rows=meta["rows"],
            floor_seconds=meta["floor_seconds"],
            floor=meta["floor"],
        ), landing
    if not _has("tessera.demo.generator", "generate_shop"):
        return _stage(
            "generate", report.NOT_AVAILABLE, "tessera.demo.generator.generate_shop"
        ), None

    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / "landing.partial"
    shutil.rmtree(partial, ignore_errors=True)
    log.info("generating %s customers (seed %s) into %s", f"{customers:,}", seed, landing)
    what = ["generate", "--out-dir", str(partial), "--customers", str(customers)]
    what += ["--seed", str(seed), "--end", end.isoformat(), "--days", str(HISTORY_DAYS)]
    run, _ = _child(what, cache, "generate", {})
    if run.returncode != 0:
        note = f"exit {run.returncode}; see {cache / 'generate.log'}"
        return _stage("generate", report.FAILED, note, seconds=run.seconds), None
    shutil.rmtree(landing, ignore_errors=True)
    partial.rename(landing)
    import duckdb

    with duckdb.connect() as con:
        floor = floors.rewrite_floor(con, landing, repeats)
    meta = {
        "generator": fingerprint,
        "date": dt.date.today().isoformat(),
        "seconds": run.seconds,
        "peak_rss_bytes": run.peak_rss_bytes,
        "rows": floor.rows if floor else None,
        "floor_seconds": floor.seconds if floor else None,
        "floor": floor.description if floor else "",
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    stage = _stage(
        "generate",
        report.OK,
        seconds=run.seconds,
        peak_rss_bytes=run.peak_rss_bytes,
        rows=meta["rows"],
        floor_seconds=meta["floor_seconds"],
        floor=meta["floor"],
    )
    return stage, landing


# ------------------------------------------------------------------------------------------------
# the daily job
# ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def local_sink(data_dir: Path) -> Iterator[str | None]:
    """The activations' local provider sink on 127.0.0.1 for the run (None until it exists)."""
    if not _has("tessera.activations.sink", "running_sink"):
        yield None
        return
    from tessera.activations.sink import running_sink

    with running_sink(data_dir, port=0) as sink:
        url = sink.url
        host = urlsplit(url).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise report.BenchError(f"the sink listens on {host!r}; the benchmark needs loopback")
        yield url


def _fresh_run_dir(cache: Path, landing: Path, name: str = "run") -> Path:
    """A fresh data folder whose landing files are hard links to the cached shop (no copy)."""
    run_dir = cache / name
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    try:
        shutil.copytree(landing, run_dir / "landing", copy_function=os.link)
    except OSError:
        shutil.rmtree(run_dir / "landing", ignore_errors=True)
        shutil.copytree(landing, run_dir / "landing")
    return run_dir


def stage_windows(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Group the job's steps by stage: windows, seconds, output rows, failures."""
    assets = out["assets"]
    stages: dict[str, dict[str, Any]] = {}
    for step in out["steps"]:
        names = list(step["assets"]) or [c["asset"] for c in step["checks"]]
        if step["assets"]:
            kinds = [report.stage_of(a, assets.get(a, {}).get("group")) for a in names]
            stage = max(set(kinds), key=kinds.count)
        elif step["checks"]:
            # A step that only evaluates checks is a quality gate (dbt tests run inside dbt build).
            stage = "quality checks"
        else:
            stage = _stage_of_step(step["step_key"], assets)
        entry = stages.setdefault(
            stage, {"windows": [], "seconds": 0.0, "assets": set(), "steps": [], "failed": []}
        )
        end = step["end"] or out["run_end"]
        entry["windows"].append((step["start"], end))
        entry["seconds"] += end - step["start"]
        entry["assets"].update(step["assets"])
        entry["steps"].append(step["step_key"])
        if step["status"] != "success":
            entry["failed"].append(step["step_key"])
    return stages


def _stage_of_step(step_key: str, assets: dict[str, Any]) -> str:
    """A step that materialized nothing (failed, skipped): name it from the asset it is named for."""
    base = step_key.split("[")[0]
    if "check" in base or "contract" in base or "gate" in base:
        return "quality checks"
    # An asset's step is named for its key with `/` as `__` (activations/deliveries).
    by_step = {name.replace("/", "__"): name for name in assets}
    if base in by_step:
        return report.stage_of(by_step[base], assets[by_step[base]]["group"])
    for step_name, name in by_step.items():
        info = assets[name]
        if step_name in base or base in step_name:
            return report.stage_of(name, info["group"])
    return report.stage_of(base, None)


def _stage_inputs(out: dict[str, Any], mine: set[str]) -> list[str]:
    """Assets a stage reads that another stage made (its input)."""
    parents = {p for a in mine for p in out["assets"].get(a, {}).get("parents", [])}
    return sorted(parents - mine)


def _floor_for(
    stage: str, entry: dict[str, Any], out: dict[str, Any], con, landing: Path, as_of: str, repeats
) -> floors.Floor | None:
    if stage == "landing":
        return floors.scan_floor(con, floors.parquet_sources(landing), as_of, repeats)
    if stage == "quality checks":
        # What the gates read: the assets they check, and the inputs of quality's own assets.
        checked = {
            c["asset"] for s in out["steps"] if s["step_key"] in entry["steps"] for c in s["checks"]
        }
        inputs = sorted(checked | set(_stage_inputs(out, set(entry["assets"]))))
    else:
        inputs = _stage_inputs(out, set(entry["assets"]))
    tables = [t for t in (floors.resolve_table(con, a) for a in inputs) if t]
    return floors.scan_floor(con, tables, as_of, repeats)


def _send_floor(con, work: Path, as_of: str, repeats: int) -> floors.Floor | None:
    """Post the SendGrid bodies of D's email messages to a fresh local sink, keep-alive.

    The floor's sink has no event emitter (the run's sink sends provider events back): the floor
    is the HTTP round trip and the sink's recording, the least a send can cost.
    """
    if not _has("tessera.activations.sink", "running_sink") or not floors.resolve_table(
        con, "outbound_messages"
    ):
        return None
    day = dt.date.fromisoformat(as_of)
    frame = con.execute(
        "select * from activations.outbound_messages where as_of_date = ?", [day]
    ).df()
    email = frame[frame["channel"] == "email"] if "channel" in frame else frame.iloc[0:0]
    if email.empty:
        return None
    bodies = floors.sendgrid_bodies(email)
    headers = {"Content-Type": "application/json", "Authorization": "Bearer bench-key"}
    from tessera.activations.sink import running_sink

    folder = work / "send-floor"
    shutil.rmtree(folder, ignore_errors=True)
    best = float("inf")
    for _ in range(repeats):
        with running_sink(folder, port=0, with_events=False) as sink:
            best = min(best, floors.post_floor(sink.url, "/v3/mail/send", bodies, headers))
    shutil.rmtree(folder, ignore_errors=True)
    size = sum(map(len, bodies))
    # Scale the email floor to every message of the stage, so the ratio compares like with like.
    seconds = best * len(frame) / len(email)
    note = (
        f"http.client keep-alive to a fresh sink: {len(bodies)} SendGrid bodies, {size:,} bytes "
        f"for {len(email):,} emails, scaled to {len(frame):,} messages"
    )
    return floors.Floor(seconds, len(frame), note)


def _pipeline_env(run_dir: Path, as_of: dt.date, sink_url: str | None) -> dict[str, str]:
    """The environment of the daily job's child process over ``run_dir``."""
    env = {
        "TESSERA_DATA_DIR": str(run_dir),
        "DAGSTER_HOME": str(run_dir / "dagster_home"),
        "TESSERA_PARTITIONS_START": (as_of - dt.timedelta(days=HISTORY_DAYS)).isoformat(),
    }
    (run_dir / "dagster_home").mkdir(exist_ok=True)
    if sink_url:
        env["TESSERA_SINK_URL"] = sink_url
        # As in `tessera run`: unattended, the day's messages go to the local sink unapproved.
        env["TESSERA_AUTO_SEND"] = "true"
        # A first day has no usual volume: let a 1M-customer shop's day through the ceiling.
        env["TESSERA_VOLUME_CEILING_FLOOR"] = str(10_000_000)
    return env


def run_pipeline(
    cache: Path, landing: Path, as_of: dt.date, repeats: int, profile: bool
) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """The daily job for one date in a measured child process, then every stage's floor."""
    if not _has("tessera.orchestration.definitions"):
        missing = [_stage(s, report.NOT_AVAILABLE) for s in report.STAGES[1:]]
        return (
            missing,
            {"status": report.NOT_AVAILABLE, "seconds": None, "peak_rss_bytes": None},
            [],
        )
    run_dir = _fresh_run_dir(cache, landing)
    stages_out: list[dict[str, Any]] = []
    with local_sink(run_dir) as sink_url:
        env = _pipeline_env(run_dir, as_of, sink_url)
        log.info("running daily_pipeline for %s in %s", as_of, run_dir)
        run, out = _child(
            ["pipeline", "--date", as_of.isoformat()], cache, "pipeline", env, profile
        )
        if out is None:
            note = f"the job did not run (exit {run.returncode}); see {cache / 'pipeline.log'}"
            failed = [
                _stage(s, report.FAILED, note if i == 0 else "")
                for i, s in enumerate(report.STAGES[1:])
            ]
            e2e = {
                "status": report.FAILED,
                "seconds": run.seconds,
                "peak_rss_bytes": run.peak_rss_bytes,
            }
            return failed, e2e, []
        by_stage = stage_windows(out)
        planned = {report.stage_of(a, i["group"]) for a, i in out["assets"].items()}
        import duckdb

        warehouse = run_dir / "warehouse.duckdb"
        with duckdb.connect(str(warehouse), read_only=True) as con:
            con.execute(f"set threads to {os.cpu_count() or 1}")
            for name in [*report.STAGES[1:], *sorted(set(by_stage) - set(report.STAGES))]:
                entry = by_stage.get(name)
                if entry is None:
                    if name in planned:
                        note = "in the job but not run (an upstream step failed)"
                        stages_out.append(_stage(name, report.FAILED, note))
                    else:
                        note = "no asset of this stage in daily_pipeline"
                        stages_out.append(_stage(name, report.NOT_AVAILABLE, note))
                    continue
                windows = report.merge_windows(entry["windows"])
                peak = report.peak_in_windows(run.samples, windows)
                status = report.FAILED if entry["failed"] else report.OK
                note = f"failed steps: {', '.join(entry['failed'])}" if entry["failed"] else ""
                if name == "sends":
                    floor = _send_floor(con, cache, as_of.isoformat(), repeats)
                else:
                    try:
                        # The cached shop, not run/landing: the sink lands provider events there.
                        floor = _floor_for(
                            name, entry, out, con, landing, as_of.isoformat(), repeats
                        )
                    except duckdb.Error as exc:
                        log.warning("floor of %s failed: %s", name, exc)
                        floor, note = None, (note + f" floor failed: {exc}").strip()
                stages_out.append(
                    _stage(
                        name,
                        status,
                        note,
                        seconds=entry["seconds"],
                        peak_rss_bytes=peak,
                        rows=floor.rows if floor else None,
                        floor_seconds=floor.seconds if floor else None,
                        floor=floor.description if floor else "",
                    )
                )
    floor_sum = sum(s["floor_seconds"] or 0 for s in stages_out) or None
    e2e = {
        "status": report.OK if out["success"] else report.FAILED,
        "seconds": run.seconds,
        "job_seconds": out["run_end"] - out["run_start"],
        "load_seconds": out["load_seconds"],
        "peak_rss_bytes": run.peak_rss_bytes,
        "wait4_maxrss_bytes": run.maxrss_bytes,
        "floor_seconds": floor_sum,
        "failed_steps": out["failed_steps"],
    }
    steps = [
        {k: s[k] for k in ("step_key", "start", "end", "status", "assets")} for s in out["steps"]
    ]
    return stages_out, e2e, steps


# ------------------------------------------------------------------------------------------------
# journeys under load, with the daily job in the middle
# ------------------------------------------------------------------------------------------------


def daily_job(cache: Path, landing: Path, as_of: dt.date) -> dict[str, Any]:
    """The daily job once, in a measured child process over its own data folder (no floors)."""
    run_dir = _fresh_run_dir(cache, landing, "journeys-run")
    with local_sink(run_dir) as sink_url:
        log.info("daily_pipeline for %s during the journey load, in %s", as_of, run_dir)
        what = ["pipeline", "--date", as_of.isoformat()]
        run, out = _child(what, cache, "journeys-pipeline", _pipeline_env(run_dir, as_of, sink_url))
    ok = out is not None and out["success"]
    return {
        "status": report.OK if ok else report.FAILED,
        "shop": cache.name,
        "seconds": round(run.seconds, 1),
        "note": "" if ok else f"exit {run.returncode}; see {cache / 'journeys-pipeline.log'}",
    }


def run_journeys(
    minutes: float,
    rate: float,
    interval: float,
    customers: int,
    shop: tuple[Path, Path] | None,
    as_of: dt.date,
) -> dict[str, Any]:
    """Event -> sink latency of the journeys under a steady load for ``minutes``, the daily job
    (on ``shop``: its cache folder and landing) started once in the middle."""
    base = {"minutes": minutes, "rate_events_per_s": rate, "interval_s": interval}
    if not _has("tessera.journeys.engine", "run_tick"):
        return {**base, "status": report.NOT_AVAILABLE, "note": "tessera.journeys.engine.run_tick"}
    from tessera.bench import journeys

    during = None
    note = ""
    if shop is None:
        note = "no shop to run the daily job on: the load ran alone"
    elif _has("tessera.orchestration.definitions"):
        cache, landing = shop

        def during() -> dict[str, Any]:
            return daily_job(cache, landing, as_of)
    else:
        note = "no daily job yet: the load ran alone"
    log.info(
        "journeys: %s events/s for %s min, ticks every %s s", rate, f"{minutes:g}", f"{interval:g}"
    )
    try:
        out = journeys.run(rate, minutes * 60, interval, 10, customers, during=during)
    except Exception as exc:  # the daily figures are still worth writing
        log.exception("the journey load failed")
        return {**base, "status": report.FAILED, "note": f"{type(exc).__name__}: {exc}"}
    return {**base, **out, "status": report.OK, "note": note}


# ------------------------------------------------------------------------------------------------
# matrix micro-benchmark, machine, main
# ------------------------------------------------------------------------------------------------


def run_matrix(work: Path, customers: int, campaigns: int, seed: int) -> dict[str, Any]:
    base = {"customers": customers, "campaigns": campaigns, "seconds": None, "peak_rss_bytes": None}
    if not _has("tessera.campaigns.bench", "run_matrix_benchmark"):
        return {
            **base,
            "status": report.NOT_AVAILABLE,
            "note": "tessera.campaigns.bench.run_matrix_benchmark",
        }
    work.mkdir(parents=True, exist_ok=True)
    log.info("matrix micro-benchmark: %s customers x %s campaigns", f"{customers:,}", campaigns)
    what = ["matrix", "--customers", str(customers), "--campaigns", str(campaigns)]
    run, out = _child(what + ["--seed", str(seed)], work, "matrix", {})
    if out is None:
        return {**base, "status": report.FAILED, "note": f"see {work / 'matrix.log'}"}
    # The engine's own timing excludes building the synthetic inputs; memory covers both.
    return {**base, **out, "status": report.OK, "peak_rss_bytes": run.peak_rss_bytes}


def machine() -> dict[str, Any]:
    import duckdb

    mem = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    return {
        "cpus": os.cpu_count(),
        "memory_bytes": mem,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
    }


def bench_size(
    customers: int, seed: int, end: dt.date, cache_root: Path, repeats: int, profile: bool
) -> dict[str, Any]:
    cache = cache_root / f"{report.size_label(customers)}-seed{seed}"
    generate, landing = ensure_shop(cache, customers, seed, end, repeats)
    if landing is None:
        rest = [_stage(s, report.NOT_AVAILABLE, "no shop to run on") for s in report.STAGES[1:]]
        e2e = {"status": report.NOT_AVAILABLE, "seconds": None, "peak_rss_bytes": None}
        stages, steps = rest, []
    else:
        stages, e2e, steps = run_pipeline(cache, landing, end, repeats, profile)
    return {
        "customers": customers,
        "seed": seed,
        "campaign_date": end.isoformat(),
        "stages": [generate, *stages],
        "end_to_end": e2e,
        "steps": steps,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tessera.bench.run", description=__doc__)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="e.g. 10k or 10k,100k,1m")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--end",
        type=dt.date.fromisoformat,
        default=DEFAULT_END,
        help="campaign date D = the last date of the data",
    )
    parser.add_argument("--floor-repeats", type=int, default=3, help="floors take the best of N")
    parser.add_argument("--matrix-customers", default="1m")
    parser.add_argument("--matrix-campaigns", type=int, default=50)
    parser.add_argument("--no-matrix", action="store_true")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="pyinstrument profile of the daily job (bench/cache/<size>/pipeline-profile.html)",
    )
    parser.add_argument(
        "--minutes",
        type=_positive_minutes,
        default=DEFAULT_JOURNEY_MINUTES,
        help="length of the journey load, the daily job starting in its middle (the issue's "
        "figure: 5)",
    )
    parser.add_argument("--journeys-rate", type=float, default=50.0, help="events per second")
    parser.add_argument(
        "--journeys-interval",
        type=float,
        default=JOURNEY_INTERVAL_S,
        help="seconds between ticks (the sensor's default)",
    )
    parser.add_argument("--journeys-customers", type=int, default=20_000)
    parser.add_argument("--no-journeys", action="store_true", help="skip the journey load")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "bench" / "cache")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    try:
        args.size_list = report.parse_sizes(args.sizes)
        args.matrix_size = report.parse_size(args.matrix_customers)
    except report.BenchError as exc:
        parser.error(str(exc))
    return args


def _positive_minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of minutes: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"minutes must be above 0, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes, matrix_customers = args.size_list, args.matrix_size
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    today = dt.date.today().isoformat()
    results: dict[str, Any] = {
        "schema_version": report.SCHEMA_VERSION,
        "date": today,
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "floor_repeats": args.floor_repeats,
        "sizes": [],
        "matrix": None,
        "journeys": None,
    }
    for customers in sizes:
        t0 = time.perf_counter()
        size = bench_size(
            customers, args.seed, args.end, args.cache_dir, args.floor_repeats, args.profile
        )
        results["sizes"].append(size)
        print(f"\n{report.size_heading(size)}  [{time.perf_counter() - t0:.0f}s]")
        print(report.text_table(report.TABLE_HEADER, report.table_rows(size)))
    if not args.no_matrix:
        results["matrix"] = run_matrix(
            args.cache_dir / "matrix", matrix_customers, args.matrix_campaigns, args.seed
        )
        print("\n" + report.matrix_line(results["matrix"]))
    if not args.no_journeys:
        smallest = min(sizes)
        cache = args.cache_dir / f"{report.size_label(smallest)}-seed{args.seed}"
        landing = cache / "landing"
        results["journeys"] = run_journeys(
            args.minutes,
            args.journeys_rate,
            args.journeys_interval,
            args.journeys_customers,
            (cache, landing) if landing.is_dir() else None,
            args.end,
        )
        print("\n" + "\n".join(report.journeys_lines(results["journeys"])))

    report.validate_result(results)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    json_path = args.results_dir / f"{today}.json"
    old = json.loads(json_path.read_text()) if json_path.exists() else None
    merged = report.merge_results(old, results)
    json_path.write_text(json.dumps(merged, indent=2, default=str) + "\n")
    (args.results_dir / f"{today}.md").write_text(report.markdown_report(merged))
    print(f"\nresults: {json_path} and {json_path.with_suffix('.md')}")
    failed = any(s["end_to_end"]["status"] == report.FAILED for s in results["sizes"])
    return 1 if failed or report.journeys_failed(results["journeys"]) else 0


if __name__ == "__main__":
    sys.exit(main())
