"""The row-count history that the row-count-change rule compares against."""

from __future__ import annotations

import datetime as dt

import duckdb

from tessera.quality.runner import previous_row_count, record_row_count


def test_previous_count_is_the_latest_accepted_run_other_than_this_one() -> None:
    con = duckdb.connect()
    assert previous_row_count(con, "raw_orders") is None
    t0 = dt.datetime(2025, 6, 1)
    record_row_count(con, "raw_orders", 100, "run-1", "2025-06-01", recorded_at=t0)
    record_row_count(
        con, "raw_orders", 110, "run-2", "2025-06-02", recorded_at=t0 + dt.timedelta(1)
    )
    record_row_count(con, "raw_events", 5, "run-2", recorded_at=t0 + dt.timedelta(1))
    assert previous_row_count(con, "raw_orders") == 110
    assert previous_row_count(con, "raw_orders", exclude_run_id="run-2") == 100


def test_rerecording_a_run_replaces_its_count() -> None:
    con = duckdb.connect()
    record_row_count(con, "raw_orders", 100, "run-1")
    record_row_count(con, "raw_orders", 120, "run-1")
    rows = con.execute("select row_count from quality.row_counts").fetchall()
    assert rows == [(120,)]
