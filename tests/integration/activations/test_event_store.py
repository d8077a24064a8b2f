"""Provider events take one path: the landing folder, read through provider_events()."""

import datetime as dt
import subprocess
import sys

import duckdb
import pandas as pd
import pytest

from tessera.activations.event_store import provider_events, publish_provider_events
from tessera.activations.events import write_atomic_parquet
from tessera.activations.measurement import conversions_before
from tessera.activations.suppression_sources import (
    MissingSuppressionSourceError,
    SuppressionSources,
)
from tessera.warehouse.landing import load_landing

HEADER = "message_id,customer_id,campaign_id,channel,event,occurred_at,revenue\n"
D = dt.date(2025, 3, 1)


def _late(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        rows,
        columns=[
            "message_id",
            "customer_id",
            "campaign_id",
            "channel",
            "event",
            "occurred_at",
            "revenue",
        ],
    )


@pytest.fixture
def store(tmp_path):
    landing = tmp_path / "landing"
    (landing / "campaign_responses").mkdir(parents=True)
    (landing / "campaign_responses" / "history.csv").write_text(
        HEADER
        + "k1,c1,winback,email,conversion,2025-02-10 10:00:00,20\n"
        # Re-delivered by the provider: one conversion.
        + "k1,c1,winback,email,conversion,2025-02-10 10:00:00,20\n"
        # 23:30 at UTC-2 is 01:30 UTC on D: not before D.
        + "k2,c2,winback,email,conversion,2025-02-28T23:30:00-02:00,5\n"
        # What staging quarantines is no conversion: a negative revenue, an unknown channel.
        + "k3,c3,winback,email,conversion,2025-02-11 10:00:00,-5\n"
        + "k4,c4,winback,pigeon,conversion,2025-02-11 10:00:00,5\n"
        + "k5,c5,winback,email,conversion,2025-02-11 10:00:00,12;50\n"
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_landing(con, landing, ("campaign_responses",))
    yield con, landing
    con.close()


def test_each_file_is_read_once_from_the_raw_load_or_from_the_folder(store):
    con, landing = store
    late = _late([("k9", "c9", "winback", "email", "conversion", "2025-02-27 09:00:00", 7.0)])
    write_atomic_parquet(late, landing / "campaign_responses", "events-late.parquet")
    events = provider_events(con, landing)
    by_source = events.groupby("source").size().to_dict()
    assert by_source == {
        "raw:campaign_responses/history.csv": 6,
        "landing:campaign_responses/events-late.parquet": 1,
    }
    # After the next raw load the same file comes from the warehouse, not twice.
    load_landing(con, landing, ("campaign_responses",))
    again = provider_events(con, landing)
    assert len(again) == 7
    assert set(again["source"]) == {
        "raw:campaign_responses/history.csv",
        "raw:campaign_responses/events-late.parquet",
    }


def test_conversions_landed_after_the_build_count_and_quarantinable_rows_do_not(store):
    con, landing = store
    late = _late([("k9", "c9", "winback", "email", "conversion", "2025-02-27 09:00:00", 7.0)])
    write_atomic_parquet(late, landing / "campaign_responses", "events-late.parquet")
    got = conversions_before(con, landing, D)
    assert sorted(got["customer_id"]) == ["c1", "c9"]
    assert got["revenue"].sum() == 27.0


def test_the_snapshot_is_rebuilt_whole_with_only_the_endpoints_events(store):
    con, landing = store
    late = _late([("k9", "c9", "winback", "email", "open", "2025-02-27 09:00:00", None)])
    write_atomic_parquet(late, landing / "campaign_responses", "events-late.parquet")
    first = publish_provider_events(con, landing)
    second = publish_provider_events(con, landing)
    assert first.events == second.events == 1 and second.new_files == 1
    count = con.execute("select count(*) from activations.provider_events").fetchall()[0][0]
    assert count == 1


def test_before_the_first_raw_load_the_snapshot_reads_only_the_endpoints_files(store, tmp_path):
    _, landing = store
    late = _late([("k9", "c9", "winback", "email", "open", "2025-02-27 09:00:00", None)])
    write_atomic_parquet(late, landing / "campaign_responses", "events-late.parquet")
    fresh = duckdb.connect(str(tmp_path / "fresh.duckdb"))  # no raw.campaign_responses yet
    try:
        snapshot = publish_provider_events(fresh, landing)
        rows = fresh.execute("select message_id, source_file from activations.provider_events")
        assert rows.fetchall() == [("k9", "campaign_responses/events-late.parquet")]
    finally:
        fresh.close()
    assert snapshot.events == 1 and snapshot.new_files == 1


def test_a_missing_required_suppression_source_is_an_error_naming_it(store):
    con, landing = store
    with pytest.raises(MissingSuppressionSourceError, match="marts.dim_customers"):
        SuppressionSources(con, landing)


def test_the_core_imports_no_dagster():
    # The core CLI and the settings it shares with the shell load without Dagster.
    code = (
        "import sys, tessera.activations.cli, tessera.activations.settings, "
        "tessera.activations.delivery, tessera.activations.event_store; "
        "bad = [m for m in sys.modules if m.split('.')[0] == 'dagster' "
        "or m.startswith('tessera.orchestration')]; "
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
