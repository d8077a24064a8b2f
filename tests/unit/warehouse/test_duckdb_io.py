"""replace_dates: one date's rows replaced in one transaction, tables created with their schema."""

import datetime as dt

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from tessera.warehouse.duckdb_io import replace_dates

DAY = dt.date(2026, 3, 2)
EXCLUSIONS = pa.schema(
    [
        ("as_of_date", pa.date32()),
        ("customer_id", pa.string()),
        ("campaign_id", pa.string()),
        ("reason", pa.string()),
        ("taken_by", pa.string()),
    ]
)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"describe {table}").fetchall()]


def test_empty_arrow_frame_creates_the_table_with_its_schema():
    con = duckdb.connect()
    replace_dates(con, [("campaigns.exclusions", EXCLUSIONS.empty_table())], DAY)
    assert con.execute("select count(*) from campaigns.exclusions").fetchall() == [(0,)]
    assert _columns(con, "campaigns.exclusions") == [
        ("as_of_date", "DATE"),
        ("customer_id", "VARCHAR"),
        ("campaign_id", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("taken_by", "VARCHAR"),
    ]
    # a later date with rows goes into the same table
    rows = pa.Table.from_pylist(
        [
            {
                "as_of_date": DAY + dt.timedelta(days=1),
                "customer_id": "c1",
                "campaign_id": "k",
                "reason": "cap",
                "taken_by": None,
            }
        ],
        schema=EXCLUSIONS,
    )
    replace_dates(con, [("campaigns.exclusions", rows)], DAY + dt.timedelta(days=1))
    assert con.execute("select customer_id, reason from campaigns.exclusions").fetchall() == [
        ("c1", "cap")
    ]


def test_empty_frame_empties_the_date_of_an_existing_table():
    con = duckdb.connect()
    rows = pa.Table.from_pylist(
        [
            {
                "as_of_date": DAY,
                "customer_id": "c1",
                "campaign_id": "k",
                "reason": "cap",
                "taken_by": None,
            }
        ],
        schema=EXCLUSIONS,
    )
    replace_dates(con, [("campaigns.exclusions", rows)], DAY)
    replace_dates(con, [("campaigns.exclusions", EXCLUSIONS.empty_table())], DAY)
    assert con.execute("select count(*) from campaigns.exclusions").fetchall() == [(0,)]


def test_empty_pandas_frame_with_typed_columns_creates_the_table():
    con = duckdb.connect()
    frame = pd.DataFrame(
        {
            "as_of_date": pd.Series([], dtype="datetime64[s]"),
            "customer_count": pd.Series([], dtype="int64"),
        }
    )
    replace_dates(con, [("campaigns.campaign_matrix", frame)], DAY)
    assert _columns(con, "campaigns.campaign_matrix") == [
        ("as_of_date", "TIMESTAMP_S"),
        ("customer_count", "BIGINT"),
    ]


def test_empty_pandas_frame_without_column_types_creates_no_table(caplog):
    con = duckdb.connect()
    with caplog.at_level("WARNING"):
        replace_dates(con, [("campaigns.plan", pd.DataFrame(columns=["as_of_date", "n"]))], DAY)
    tables = con.execute("select table_name from duckdb_tables()").fetchall()
    assert tables == []
    assert "campaigns.plan not created" in caplog.text
    assert "as_of_date, n" in caplog.text


def test_a_failed_write_leaves_every_table_as_it_was():
    con = duckdb.connect()
    first = pa.Table.from_pylist(
        [
            {
                "as_of_date": DAY,
                "customer_id": "c1",
                "campaign_id": "k",
                "reason": "cap",
                "taken_by": None,
            }
        ],
        schema=EXCLUSIONS,
    )
    replace_dates(con, [("campaigns.exclusions", first)], DAY)
    bad = pd.DataFrame({"as_of_date": [DAY], "customer_id": ["c2"], "no_such_column": [1]})
    with pytest.raises(duckdb.BinderException):
        replace_dates(
            con,
            [
                ("campaigns.exclusions", EXCLUSIONS.empty_table()),
                ("campaigns.exclusions", bad),
            ],
            DAY,
        )
    assert con.execute("select customer_id from campaigns.exclusions").fetchall() == [("c1",)]
