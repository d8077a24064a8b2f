"""Row accounting: every landed row is staged or quarantined; counts per table and reason."""

from __future__ import annotations

import duckdb
import pytest

from tessera.quality.quarantine import quarantine_counts, row_accounting


@pytest.fixture
def ledger() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for schema in ("raw", "staging", "quarantine"):
        con.execute(f"create schema {schema}")
    con.execute("create table raw.orders as select range::varchar as order_id, range as _source_row "
                "from range(10)")  # fmt: skip
    con.execute(
        "create table staging.stg_shop__orders as select * from raw.orders where _source_row < 7"
    )
    con.execute("""create table quarantine.quarantine_orders as
        select case when _source_row = 9 then 'duplicate_key' else 'unknown_customer' end as reason,
               true as is_blocking, * from raw.orders where _source_row >= 7
        union all select 'invalid_email', false, * from raw.orders where _source_row = 0""")
    yield con
    con.close()


def test_landed_rows_equal_staged_plus_quarantined(ledger) -> None:
    row = row_accounting(ledger, ("orders",)).iloc[0]
    assert (row.landed_rows, row.staged_rows, row.quarantined_rows, row.flagged_rows) == (
        10,
        7,
        3,
        1,
    )
    assert row.balanced


def test_a_lost_row_unbalances_the_account(ledger) -> None:
    ledger.execute("delete from staging.stg_shop__orders where _source_row = 1")
    assert not row_accounting(ledger, ("orders",)).iloc[0].balanced


def test_a_table_not_built_yet_is_not_balanced(ledger) -> None:
    row = row_accounting(ledger, ("events",)).iloc[0]
    assert row.landed_rows is None and not row.balanced


def test_counts_per_reason_split_blocking_from_flagged(ledger) -> None:
    counts = quarantine_counts(ledger, ("orders", "events"))
    got = {(r.reason, bool(r.is_blocking)): r.rows for r in counts.itertuples()}
    assert got == {("unknown_customer", True): 2, ("duplicate_key", True): 1,
                   ("invalid_email", False): 1}  # fmt: skip
