"""A date without results, messages or exclusions still creates each table, typed."""

import datetime as dt

import duckdb
import pandas as pd
import pytest

from tessera.activations.outbound import EXCLUDED_SCHEMA, MESSAGE_SCHEMA
from tessera.activations.results import PROGRAMME_SCHEMA, RESULT_SCHEMA, campaign_results
from tessera.warehouse.duckdb_io import empty_frame, replace_dates

D = dt.date(2026, 3, 2)


@pytest.mark.parametrize(
    ("table", "schema", "expected"),
    [
        ("activations.campaign_results", RESULT_SCHEMA, {"as_of_date": "DATE", "cohorts": "BIGINT"}),
        ("activations.outbound_exclusions", EXCLUDED_SCHEMA, {"as_of_date": "TIMESTAMP", "reason": "VARCHAR"}),
        ("activations.programme_results", PROGRAMME_SCHEMA, {"window_start": "DATE", "control_n": "BIGINT"}),
        ("activations.outbound_messages", MESSAGE_SCHEMA, {"priority": "INTEGER", "address": "VARCHAR"}),
    ],
)  # fmt: skip
def test_a_date_without_results_or_exclusions_still_creates_typed_tables(table, schema, expected):
    con = duckdb.connect()
    frame = empty_frame(schema)
    assert frame.empty and list(frame.columns) == schema.names
    replace_dates(con, [(table, frame)], D)
    types = dict(con.execute(f"select column_name, column_type from (describe {table})").fetchall())
    assert {k: types[k] for k in expected} == expected


def test_campaign_results_of_a_date_without_cohorts_are_typed():
    empty = campaign_results(
        D,
        pd.DataFrame(
            columns=["as_of_date", "customer_id", "campaign_id", "is_control", "duration_days"]
        ),
        pd.DataFrame(columns=["customer_id", "ordered_at", "amount", "status"]),
        pd.DataFrame(columns=["customer_id", "campaign_id", "occurred_at", "revenue"]),
    )
    assert empty.empty and list(empty.columns) == RESULT_SCHEMA.names
    assert str(empty["treatment_n"].dtype) == "int64[pyarrow]"
