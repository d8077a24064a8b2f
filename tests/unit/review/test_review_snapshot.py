"""The app reads its own copy of the warehouse, refreshed only when no run writes it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
from review_data import HOLD

from tessera.review.snapshot import Snapshot, copy_tables, warehouse_is_quiet


def _tables(path: Path) -> set[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("select schema_name, table_name from duckdb_tables()").fetchall()
    return {f"{s}.{t}" for s, t in rows}


def test_the_copy_holds_the_review_tables_that_exist(warehouse: Path, tmp_path: Path) -> None:
    target = tmp_path / "review" / "snapshot.duckdb"
    copied = copy_tables(warehouse, target)
    assert copied == 7
    assert "campaigns.campaign_matrix" in _tables(target)
    assert not list(target.parent.glob(".*tmp"))


def test_a_recently_changed_warehouse_is_not_quiet(warehouse: Path) -> None:
    assert not warehouse_is_quiet(warehouse, quiet_seconds=60)
    old = time.time() - 120
    os.utime(warehouse, (old, old))
    assert warehouse_is_quiet(warehouse, quiet_seconds=60)
    warehouse.with_name(warehouse.name + ".wal").write_bytes(b"")
    assert not warehouse_is_quiet(warehouse, quiet_seconds=60)


def test_while_a_run_holds_the_lock_the_last_copy_is_served(
    warehouse: Path, tmp_path: Path
) -> None:
    snap = Snapshot(warehouse, tmp_path / "review", quiet_seconds=0)
    assert snap.refresh()
    before = snap.refreshed_at
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "locked"
        assert not snap.refresh()
        assert snap.state().stale_reason == "a run is writing the warehouse"
        with snap.connect() as con:
            n = con.execute("select count(*) from campaigns.campaign_matrix").fetchall()[0][0]
        assert n == 4
        assert snap.refreshed_at == before
    finally:
        writer.communicate("\n", timeout=30)
    assert snap.refresh()
    assert snap.state().stale_reason == ""


def test_no_warehouse_yet_says_how_to_build_one(tmp_path: Path) -> None:
    snap = Snapshot(tmp_path / "warehouse.duckdb", tmp_path / "review")
    assert not snap.refresh()
    assert "make run" in snap.state().stale_reason
    with snap.connect() as con:
        assert con.execute("select 1").fetchall() == [(1,)]


def test_the_first_copy_is_made_even_right_after_a_write(warehouse: Path, tmp_path: Path) -> None:
    snap = Snapshot(warehouse, tmp_path / "review", quiet_seconds=3600)
    assert snap.refresh()  # no copy yet: a just-written (unlocked) warehouse is copied
    assert not snap.refresh()  # a copy exists: wait for the warehouse to be quiet
    assert snap.state().stale_reason == "a run is writing the warehouse"
