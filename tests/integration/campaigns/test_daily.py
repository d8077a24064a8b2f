"""The campaign date's core work on a warehouse connection, without Dagster."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tessera.campaigns import daily
from tessera.campaigns.engine import assign_campaigns

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "campaigns"))
from campaign_builders import D0, make_catalog, membership  # noqa: E402

pytestmark = pytest.mark.integration


def _warehouse(groups: dict[str, list[str]]) -> tuple[duckdb.DuckDBPyConnection, pd.DataFrame]:
    con = duckdb.connect()
    frame = membership(groups)
    frame.insert(0, "as_of_date", D0)
    con.execute("create schema segments")
    con.register("m", frame)
    con.execute("create table segments.segment_membership as select * from m")
    con.unregister("m")
    return con, frame


def test_a_date_without_exclusions_still_creates_the_exclusions_table_and_the_matrix():
    catalog = make_catalog([{"id": "welcome", "target_groups": ["g_all"]}])
    con, _ = _warehouse({f"c{i}": ["g_all"] for i in range(5)})
    run = daily.build_assignments(con, catalog, D0)
    assert len(run.assignments) == 5 and run.exclusions.empty
    assert con.execute("select count(*) from campaigns.exclusions").fetchall() == [(0,)]
    matrix = daily.build_matrix(con, catalog, D0)
    assert matrix.customers_assigned == 5
    assert matrix.exclusions_by_reason["pairs"].sum() == 0


def test_the_matrix_table_is_the_engines_matrix_of_the_date():
    catalog = make_catalog(
        [
            {"id": "welcome", "target_groups": ["g_new"]},
            {"id": "winback", "target_groups": ["g_old"], "channels": ["sms"]},
        ]
    )
    groups = {f"c{i}": (["g_new"] if i % 3 else ["g_old", "g_new"]) for i in range(30)}
    con, frame = _warehouse(groups)
    daily.build_assignments(con, catalog, D0)
    daily.build_matrix(con, catalog, D0)
    written = con.sql("select * from campaigns.campaign_matrix").to_arrow_table()
    expected = assign_campaigns(frame, catalog, D0, None).matrix
    assert written.num_rows == 2
    assert written.equals(expected)
