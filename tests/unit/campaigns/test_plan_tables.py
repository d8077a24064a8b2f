"""The plan tables keep their types on a date without rows, so readers find a table."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from tessera.campaigns.daily import build_plan_vs_actual
from tessera.campaigns.plan import PLAN_COLUMNS, PLAN_SCHEMA, as_table
from tessera.warehouse.duckdb_io import replace_dates

D = dt.date(2025, 3, 1)


def _types(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    schema, name = table.split(".")
    rows = con.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = $s and table_name = $t",
        {"s": schema, "t": name},
    ).fetchall()
    return dict(rows)


def test_an_empty_plan_creates_its_table_with_the_plan_types():
    con = duckdb.connect()
    replace_dates(
        con,
        [("campaigns.campaign_plan", as_table(pd.DataFrame(columns=PLAN_COLUMNS), PLAN_SCHEMA))],
        D,
        date_column="plan_date",
    )
    assert _types(con, "campaigns.campaign_plan") == {
        "plan_date": "DATE",
        "as_of_date": "DATE",
        "micro_segment_id": "VARCHAR",
        "campaign_id": "VARCHAR",
        "customer_count": "BIGINT",
        "control_count": "BIGINT",
    }


def test_a_date_no_earlier_plan_covers_writes_an_empty_typed_comparison():
    con = duckdb.connect()
    con.execute("create schema campaigns")
    con.execute(
        "create table campaigns.campaign_matrix as select date '2025-03-01' as as_of_date,"
        " 'seg' as micro_segment_id, 'welcome' as campaign_id, 3::bigint as customer_count"
    )
    # Only the plan made on D itself: it covers later dates, not D.
    con.execute(
        "create table campaigns.campaign_plan as select date '2025-03-01' as plan_date,"
        " date '2025-03-02' as as_of_date, 'seg' as micro_segment_id,"
        " 'welcome' as campaign_id, 3::bigint as customer_count, 0::bigint as control_count"
    )
    comparison = build_plan_vs_actual(con, D)
    assert comparison.empty
    types = _types(con, "campaigns.plan_vs_actual")
    assert types["as_of_date"] == "DATE" and types["planned"] == "BIGINT"
    # A later date with rows inserts into the same table.
    con.execute(
        "insert into campaigns.campaign_matrix values (date '2025-03-02', 'seg', 'welcome', 4)"
    )
    later = build_plan_vs_actual(con, D + dt.timedelta(days=1))
    assert later[["planned", "actual", "difference"]].values.tolist() == [[3, 4, 1]]
    count = con.execute("select count(*) from campaigns.plan_vs_actual").fetchall()[0][0]
    assert count == 1
