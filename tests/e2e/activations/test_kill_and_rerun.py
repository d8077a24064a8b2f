"""A sending process killed mid-batch, then rerun: every message reaches the sink exactly once."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tessera.activations.sink import FaultPlan, running_sink

pytestmark = pytest.mark.e2e
WORKER = Path(__file__).with_name("send_worker.py")
ROOT = Path(__file__).resolve().parents[3]
N = 8000


def _worker(db: Path, url: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), url, str(N), "2000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )


def test_killed_sender_then_rerun_delivers_every_message_exactly_once(tmp_path):
    db = tmp_path / "ledger.duckdb"
    # Every request is recorded, then answered slowly: the kill lands while batches are in
    # flight (recorded by the sink, not yet confirmed in the ledger).
    with running_sink(
        tmp_path, with_events=False, faults=FaultPlan(rate=1.0, kinds=("slow",), slow_s=1.5)
    ) as sink:
        proc = _worker(db, sink.url)
        deadline = time.monotonic() + 120
        while sink.stats()["messages"] < 2000 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        before = sink.stats()["messages"]
        assert 0 < before < N, "the kill must land mid-run"
        with duckdb.connect(str(db)) as con:
            in_flight = con.execute(
                "select count(*) from activations.deliveries where status = 'sending'"
            ).fetchall()[0][0]
        assert in_flight > 0, "some batches must have been in flight when killed"

        sink.set_faults(None)
        rerun = _worker(db, sink.url)
        out, err = rerun.communicate(timeout=300)
        assert rerun.returncode == 0, err
        summary = json.loads(out.strip().splitlines()[-1])
        stats = sink.stats()

    assert stats["unique_keys"] == N and stats["duplicates"] == 0 and stats["messages"] == N
    assert summary["reconciled"] > 0  # in-flight batches the sink had recorded were not resent
    with duckdb.connect(str(db)) as con:
        statuses = dict(
            con.execute("select status, count(*) from activations.deliveries group by 1").fetchall()
        )
    assert statuses == {"sent": N}
