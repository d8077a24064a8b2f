"""Pure parts of the benchmark: size parsing, stage naming, ratios, tables and the result schema."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SCHEMA_VERSION = 1

#: Stages in pipeline order. `landing` and `training` are split out of the issue's list because
#: they are real, separately timed steps of the daily job (landing copy, weekly model fit).
STAGES = (
    "generate",
    "landing",
    "dbt build",
    "quality checks",
    "training",
    "scoring",
    "segmentation",
    "matrix",
    "outbound rendering",
    "sends",
)

OK = "ok"
CACHED = "cached"
FAILED = "failed"
NOT_AVAILABLE = "not available yet"
STATUSES = (OK, CACHED, FAILED, NOT_AVAILABLE)

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([km]?)\s*$", re.IGNORECASE)
_FACTORS = {"": 1, "k": 1_000, "m": 1_000_000}

STAGE_FIELDS = (
    "stage",
    "status",
    "seconds",
    "peak_rss_bytes",
    "rows",
    "rows_per_second",
    "floor_seconds",
    "floor",
    "ratio",
    "note",
)


class BenchError(ValueError):
    """The benchmark was asked for something it cannot do (bad size, bad result file)."""


def parse_size(text: str) -> int:
    """`10k` -> 10_000, `1m` -> 1_000_000, `2500` -> 2500 (case-insensitive)."""
    match = _SIZE.match(text)
    if not match:
        raise BenchError(
            f"not a size: {text!r} (use a number with an optional k or m, e.g. 10k, 1m)"
        )
    value = float(match.group(1)) * _FACTORS[match.group(2).lower()]
    if value < 1 or value != int(value):
        raise BenchError(f"not a whole positive number of customers: {text!r}")
    return int(value)


def parse_sizes(text: str) -> list[int]:
    """A comma-separated list of sizes, in the given order, duplicates dropped."""
    sizes: list[int] = []
    for part in text.split(","):
        if not part.strip():
            continue
        size = parse_size(part)
        if size not in sizes:
            sizes.append(size)
    if not sizes:
        raise BenchError(f"no size given in {text!r} (e.g. --sizes 10k,100k,1m)")
    return sizes


def size_label(customers: int) -> str:
    """The short label of a size: 10000 -> `10k`, 1000000 -> `1m`, 2500 -> `2500`."""
    if customers % 1_000_000 == 0:
        return f"{customers // 1_000_000}m"
    if customers % 1_000 == 0:
        return f"{customers // 1_000}k"
    return str(customers)


def stage_of(asset_name: str, group: str | None) -> str:
    """The benchmark stage an asset of the daily job belongs to, from its group and name."""
    name = asset_name.lower()
    group = (group or "").lower()
    if group == "sources" or name.startswith(("raw_", "raw/")):
        return "landing"
    if group in ("staging", "intermediate", "marts", "quarantine", "warehouse"):
        return "dbt build"
    if group == "quality":
        return "quality checks"
    if group == "ml":
        return "scoring" if "score" in name or "drivers" in name else "training"
    if group == "segments":
        return "segmentation"
    if group == "campaigns":
        return "matrix"
    if group == "activations":
        if "outbound" in name or "render" in name:
            return "outbound rendering"
        if "deliver" in name or "send" in name:
            return "sends"
        return "activations (feedback)"
    return group or "other"


def ratio(seconds: float | None, floor_seconds: float | None) -> float | None:
    """Stage time as a multiple of its floor; None when either is missing or the floor is 0."""
    if seconds is None or floor_seconds is None or floor_seconds <= 0:
        return None
    return seconds / floor_seconds


def rows_per_second(rows: int | None, seconds: float | None) -> float | None:
    if rows is None or seconds is None or seconds <= 0:
        return None
    return rows / seconds


def merge_windows(windows: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Union of [start, end] intervals, sorted and non-overlapping."""
    merged: list[list[float]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def peak_in_windows(
    samples: Sequence[tuple[float, int]], windows: Sequence[tuple[float, float]]
) -> int | None:
    """The largest sampled value whose time falls in any window (None if no sample does)."""
    best: int | None = None
    for t, value in samples:
        if any(a <= t <= b for a, b in windows) and (best is None or value > best):
            best = value
    return best


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 600:
        return f"{seconds:.1f}s"
    return f"{int(seconds // 60)}m{int(round(seconds % 60)):02d}s"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    value = float(n)
    for unit in units:
        if value < 1024 or unit == units[-1]:
            return f"{value:.0f} {unit}" if unit in ("B", "KiB") else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def fmt_count(n: float | None) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "-"
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e4:
        return f"{n / 1e3:.0f}k"
    return f"{n:,.0f}"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


TABLE_HEADER = ("stage", "status", "time", "peak RSS", "rows", "rows/s", "floor", "x floor")


def table_rows(result: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """One printable row per stage plus the end-to-end row, for one size's result."""
    rows = []
    for s in result["stages"]:
        rows.append(
            (
                s["stage"],
                s["status"],
                fmt_seconds(s["seconds"]),
                fmt_bytes(s["peak_rss_bytes"]),
                fmt_count(s["rows"]),
                fmt_count(s["rows_per_second"]),
                fmt_seconds(s["floor_seconds"]),
                fmt_ratio(s["ratio"]),
            )
        )
    e2e = result["end_to_end"]
    rows.append(
        (
            "end to end",
            e2e["status"],
            fmt_seconds(e2e["seconds"]),
            fmt_bytes(e2e["peak_rss_bytes"]),
            fmt_count(e2e.get("rows")),
            fmt_count(rows_per_second(e2e.get("rows"), e2e["seconds"])),
            fmt_seconds(e2e.get("floor_seconds")),
            fmt_ratio(ratio(e2e["seconds"], e2e.get("floor_seconds"))),
        )
    )
    return rows


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A fixed-width table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table; pipes inside cells are escaped."""

    def cell(value: str) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def size_heading(result: Mapping[str, Any]) -> str:
    return (
        f"{size_label(result['customers'])} customers (seed {result['seed']}, "
        f"campaign date {result['campaign_date']})"
    )


def matrix_line(matrix: Mapping[str, Any] | None) -> str:
    if not matrix:
        return "matrix micro-benchmark: not run"
    if matrix["status"] != OK:
        return f"matrix micro-benchmark: {matrix['status']}" + (
            f" ({matrix['note']})" if matrix.get("note") else ""
        )
    return (
        f"matrix micro-benchmark: {fmt_count(matrix['customers'])} customers x "
        f"{matrix['campaigns']} campaigns in {fmt_seconds(matrix['seconds'])}, "
        f"peak {fmt_bytes(matrix['peak_rss_bytes'])} "
        f"({fmt_count(matrix.get('assignments'))} assignments, "
        f"{fmt_count(matrix.get('exclusions'))} exclusions)"
    )


#: What a journeys result of status ok carries (tessera.bench.journeys.run plus the wiring).
JOURNEY_FIELDS = (
    "status",
    "minutes",
    "rate_events_per_s",
    "interval_s",
    "events_accepted",
    "messages_received",
    "lost",
    "duplicates",
    "latency_p50_s",
    "latency_p95_s",
    "ticks",
    "tick_seconds_max",
    "evaluation_events_per_s",
    "during_job",
)


def journeys_failed(journeys: Mapping[str, Any] | None) -> bool:
    """A load that failed, or lost or double-sent a message (the issue's goal is 0 and 0)."""
    if not journeys:
        return False
    if journeys["status"] == FAILED:
        return True
    return journeys["status"] == OK and bool(journeys["lost"] or journeys["duplicates"])


def journeys_lines(journeys: Mapping[str, Any] | None) -> list[str]:
    """The journey load's figures: latency overall and while the daily job ran, loss, ticks."""
    if not journeys:
        return ["journeys under load: not run"]
    head = (
        f"journeys under load: {journeys['rate_events_per_s']:g} events/s for "
        f"{journeys['minutes']:g} min, ticks every {journeys['interval_s']:g} s"
    )
    if journeys["status"] != OK:
        note = f" ({journeys['note']})" if journeys.get("note") else ""
        return [f"{head}: {journeys['status']}{note}"]
    lines = [
        head,
        f"  event accepted -> sink: p50 {fmt_seconds(journeys['latency_p50_s'])}, "
        f"p95 {fmt_seconds(journeys['latency_p95_s'])} (goal: p95 under 60 s)",
        f"  {fmt_count(journeys['events_accepted'])} events, "
        f"{fmt_count(journeys['messages_received'])} messages, lost {journeys['lost']}, "
        f"duplicated {journeys['duplicates']}",
        f"  {journeys['ticks']} ticks, slowest {fmt_seconds(journeys['tick_seconds_max'])}, "
        f"evaluation {fmt_count(journeys['evaluation_events_per_s'])} events/s (sends included)",
    ]
    job = journeys["during_job"]
    if job:
        lines.append(
            f"  daily job ({job.get('shop', '?')}) {job.get('status', '?')}: started at "
            f"{fmt_seconds(job['started_after_s'])}, ran {fmt_seconds(job['wall_seconds'])} "
            f"({fmt_seconds(job['overlap_s'])} under load); its {fmt_count(job['messages'])} "
            f"messages: p50 {fmt_seconds(job['latency_p50_s'])}, "
            f"p95 {fmt_seconds(job['latency_p95_s'])}"
            + (f" ({job['note']})" if job.get("note") else "")
        )
    else:
        lines.append(f"  no daily job ran during the load ({journeys.get('note') or 'none given'})")
    return lines


def slowest_steps(steps: Sequence[Mapping[str, Any]], n: int = 5) -> list[tuple[str, float]]:
    """The `n` longest steps of the daily job (finished ones), longest first."""
    timed = [
        (s["step_key"], s["end"] - s["start"]) for s in steps if s.get("end") and s.get("start")
    ]
    return sorted(timed, key=lambda kv: -kv[1])[:n]


def markdown_report(results: Mapping[str, Any]) -> str:
    """The Markdown summary written next to the JSON: one table per size and the matrix line."""
    m = results["machine"]
    lines = [
        f"# Benchmark {results['date']}",
        "",
        f"Machine: {m['cpus']} CPUs, {fmt_bytes(m['memory_bytes'])} RAM, {m['platform']}, "
        f"Python {m['python']}, DuckDB {m['duckdb']}. Floors: best of {results['floor_repeats']}.",
        "",
    ]
    for size in results["sizes"]:
        lines += [
            f"## {size_heading(size)}",
            "",
            markdown_table(TABLE_HEADER, table_rows(size)),
            "",
        ]
        slow = slowest_steps(size.get("steps", []))
        if slow:
            lines += ["Slowest steps: " + ", ".join(f"`{k}` {fmt_seconds(t)}" for k, t in slow), ""]
        notes = [f"- {s['stage']}: {s['note']}" for s in size["stages"] if s.get("note")]
        if notes:
            lines += notes + [""]
    lines += [matrix_line(results.get("matrix")), ""]
    if results.get("journeys"):
        journey = journeys_lines(results["journeys"])
        lines += [journey[0], "", *(f"- {line.strip()}" for line in journey[1:]), ""]
    return "\n".join(lines)


def merge_results(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """Today's file keeps earlier sizes from the same date; a size run again replaces its entry."""
    merged = dict(new)
    if not old or old.get("schema_version") != SCHEMA_VERSION:
        return merged
    fresh = {s["customers"] for s in new["sizes"]}
    kept = [s for s in old.get("sizes", []) if s["customers"] not in fresh]
    merged["sizes"] = sorted([*kept, *new["sizes"]], key=lambda s: s["customers"])
    if not new.get("matrix") and old.get("matrix"):
        merged["matrix"] = old["matrix"]
    if not new.get("journeys") and old.get("journeys"):
        merged["journeys"] = old["journeys"]
    return merged


def _require(obj: Mapping[str, Any], keys: Iterable[str], where: str) -> None:
    missing = [k for k in keys if k not in obj]
    if missing:
        raise BenchError(f"{where}: missing {', '.join(missing)}")


def validate_result(results: Mapping[str, Any]) -> None:
    """Raise BenchError naming the first field that breaks the result schema."""
    _require(results, ("schema_version", "date", "machine", "floor_repeats", "sizes"), "result")
    if results["schema_version"] != SCHEMA_VERSION:
        raise BenchError(f"result: schema_version {results['schema_version']} != {SCHEMA_VERSION}")
    _require(
        results["machine"], ("cpus", "memory_bytes", "platform", "python", "duckdb"), "machine"
    )
    for i, size in enumerate(results["sizes"]):
        where = f"sizes[{i}]"
        _require(size, ("customers", "seed", "campaign_date", "stages", "end_to_end"), where)
        for j, stage in enumerate(size["stages"]):
            _require(stage, STAGE_FIELDS, f"{where}.stages[{j}]")
            if stage["status"] not in STATUSES:
                raise BenchError(f"{where}.stages[{j}].status: unknown {stage['status']!r}")
            for key in ("seconds", "floor_seconds", "ratio", "rows_per_second"):
                value = stage[key]
                if value is not None and (not isinstance(value, int | float) or value < 0):
                    raise BenchError(
                        f"{where}.stages[{j}].{key}: not a non-negative number: {value!r}"
                    )
        _require(size["end_to_end"], ("status", "seconds", "peak_rss_bytes"), f"{where}.end_to_end")
    journeys = results.get("journeys")
    if journeys:
        _require(journeys, ("status", "minutes", "rate_events_per_s", "interval_s"), "journeys")
        if journeys["status"] not in STATUSES:
            raise BenchError(f"journeys.status: unknown {journeys['status']!r}")
        if journeys["status"] == OK:
            _require(journeys, JOURNEY_FIELDS, "journeys")
