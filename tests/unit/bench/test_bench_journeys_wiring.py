"""`make bench`'s journey load: its options, its wiring into the run and the figures it prints."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tessera.bench import journeys, report
from tessera.bench import run as bench_run

OK_LOAD = {
    "status": "ok",
    "note": "",
    "minutes": 2.0,
    "rate_events_per_s": 50.0,
    "interval_s": 30.0,
    "seconds": 120.0,
    "events_accepted": 6000,
    "messages_expected": 6000,
    "messages_received": 6000,
    "lost": 0,
    "duplicates": 0,
    "latency_p50_s": 16.4,
    "latency_p95_s": 31.2,
    "ticks": 5,
    "tick_seconds_max": 4.2,
    "evaluation_events_per_s": 610.0,
    "during_job": {
        "status": "ok",
        "shop": "10k-seed42",
        "seconds": 71.0,
        "note": "",
        "started_after_s": 60.0,
        "wall_seconds": 71.3,
        "overlap_s": 60.0,
        "messages": 3000,
        "latency_p50_s": 18.0,
        "latency_p95_s": 44.5,
    },
}


def test_the_load_lasts_two_minutes_by_default_and_five_on_request():
    assert bench_run.parse_args([]).minutes == 2.0
    args = bench_run.parse_args(["--minutes", "5"])
    assert args.minutes == 5.0
    assert args.journeys_interval == 30.0 and args.journeys_rate == 50.0
    assert bench_run.parse_args(["--no-journeys"]).no_journeys


@pytest.mark.parametrize("minutes", ["0", "-1", "two"])
def test_minutes_that_are_not_a_positive_number_are_refused(minutes, capsys):
    with pytest.raises(SystemExit):
        bench_run.parse_args(["--minutes", minutes])
    assert "minutes" in capsys.readouterr().err


def test_the_load_runs_for_the_minutes_and_starts_the_daily_job_on_the_shop(
    monkeypatch, tmp_path: Path
):
    seen: dict = {}

    def fake_run(rate, seconds, interval, batch, customers, during=None):
        seen.update(rate=rate, seconds=seconds, interval=interval, customers=customers)
        seen["job"] = during() if during else None
        return {k: v for k, v in OK_LOAD.items() if k not in ("status", "note", "minutes")}

    def fake_daily(cache, landing, as_of):
        seen["daily"] = (cache, landing, as_of)
        return {"status": "ok"}

    monkeypatch.setattr(journeys, "run", fake_run)
    monkeypatch.setattr(bench_run, "daily_job", fake_daily)
    shop = (tmp_path / "10k-seed42", tmp_path / "10k-seed42" / "landing")
    out = bench_run.run_journeys(5, 50.0, 30.0, 1000, shop, dt.date(2026, 6, 1))
    assert seen["seconds"] == 300 and seen["rate"] == 50.0 and seen["interval"] == 30.0
    assert seen["daily"] == (*shop, dt.date(2026, 6, 1))
    assert seen["job"] == {"status": "ok"}
    assert out["status"] == "ok" and out["minutes"] == 5


def test_without_a_shop_the_load_runs_alone_and_says_so(monkeypatch):
    seen: dict = {}

    def fake_run(rate, seconds, interval, batch, customers, during=None):
        seen["during"] = during
        return {**OK_LOAD, "during_job": None}

    monkeypatch.setattr(journeys, "run", fake_run)
    out = bench_run.run_journeys(1, 50.0, 30.0, 1000, None, dt.date(2026, 6, 1))
    assert seen["during"] is None
    assert "no shop" in out["note"]
    assert "no daily job ran" in "\n".join(report.journeys_lines(out))


def test_the_figures_name_latency_loss_and_the_daily_job():
    text = "\n".join(report.journeys_lines(OK_LOAD))
    assert "p50 16.4s, p95 31.2s" in text
    assert "lost 0, duplicated 0" in text
    assert "daily job (10k-seed42) ok: started at 60.0s" in text
    assert "p95 44.5s" in text


def test_a_lost_or_doubled_message_fails_the_bench_and_a_missing_field_breaks_the_schema():
    assert not report.journeys_failed(OK_LOAD)
    assert report.journeys_failed({**OK_LOAD, "lost": 1})
    assert report.journeys_failed({**OK_LOAD, "duplicates": 2})
    assert report.journeys_failed({**OK_LOAD, "status": "failed"})
    broken = {k: v for k, v in OK_LOAD.items() if k != "latency_p95_s"}
    results = {
        "schema_version": report.SCHEMA_VERSION,
        "date": "2026-12-04",
        "machine": {"cpus": 2, "memory_bytes": 1, "platform": "x", "python": "3", "duckdb": "1"},
        "floor_repeats": 1,
        "sizes": [],
        "journeys": broken,
    }
    with pytest.raises(report.BenchError, match="journeys: missing latency_p95_s"):
        report.validate_result(results)


def test_main_writes_the_load_beside_the_daily_figures(monkeypatch, tmp_path: Path, capsys):
    size = {
        "customers": 10_000,
        "seed": 42,
        "campaign_date": "2026-06-01",
        "stages": [],
        "end_to_end": {"status": "ok", "seconds": 1.0, "peak_rss_bytes": 1},
        "steps": [],
    }
    calls = []
    monkeypatch.setattr(bench_run, "bench_size", lambda *a, **k: size)
    monkeypatch.setattr(
        bench_run,
        "run_journeys",
        lambda *a: calls.append(a) or {**OK_LOAD, "duplicates": 1},
    )
    results = tmp_path / "results"
    code = bench_run.main(
        [
            "--sizes",
            "10k",
            "--no-matrix",
            "--minutes",
            "3",
            "--results-dir",
            str(results),
            "--cache-dir",
            str(tmp_path / "cache"),
        ]  # fmt: skip
    )
    assert code == 1  # a doubled message fails the bench
    assert calls[0][0] == 3.0 and calls[0][4] is None  # no cached shop in tmp_path
    (written,) = results.glob("*.json")
    assert json.loads(written.read_text())["journeys"]["duplicates"] == 1
    assert "journeys under load: 50 events/s for 2 min" in written.with_suffix(".md").read_text()
    assert "event accepted -> sink" in capsys.readouterr().out
