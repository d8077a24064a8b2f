"""The mart suites: keys, ranges and references of typed tables, and the per-partition features."""

from __future__ import annotations

import duckdb
import pytest

from tessera.quality.runner import validate
from tessera.quality.suites import Clock, Severity, mart_suite

CLOCK = Clock(now="2025-06-15 00:00:00", as_of="2025-06-01")


@pytest.fixture
def marts() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("""
        create table marts.dim_customers as select * from (values
            ('c1', 'a@x.de', timestamp '2025-01-01', true),
            ('c2', 'b@x.de', timestamp '2025-05-01', true),
            ('c3', 'c@x.de', timestamp '2025-06-05', true)
        ) v(customer_id, email, created_at, is_email_valid)""")
    con.execute("""
        create table marts.fct_orders as select * from (values
            ('o1', 'c1', timestamp '2025-03-01', 10.0, 'completed'),
            ('o2', 'c2', timestamp '2025-05-02', 0.0, 'refunded')
        ) v(order_id, customer_id, ordered_at, amount, status)""")
    con.execute("""
        create table marts.fct_order_items as select * from (values
            ('o1', 'p1', 1, 10.0), ('o2', 'p2', 2, 0.0)
        ) v(order_id, product_id, quantity, unit_price)""")
    con.execute("""
        create table marts.customer_features as select * from (values
            (date '2025-06-01', 'c1', 151, 3, 0.5, 0.2),
            (date '2025-06-01', 'c2', 31, 30, 1.0, 0.0),
            (date '2025-05-31', 'c1', 150, 2, 0.5, 0.2)
        ) v(as_of_date, customer_id, tenure_days, days_since_last_order, share_shoes,
            cart_abandonment_rate_30d)""")
    yield con
    con.close()


def _features(con: duckdb.DuckDBPyConnection, as_of: str = "2025-06-01"):
    columns = tuple(r[0] for r in con.execute("describe marts.customer_features").fetchall())
    clock = Clock(now=CLOCK.now, as_of=as_of)
    return validate(con, mart_suite("customer_features", clock, columns=columns))


@pytest.mark.parametrize("table", ["dim_customers", "fct_orders", "fct_order_items"])
def test_clean_marts_pass(marts, table) -> None:
    result = validate(marts, mart_suite(table, CLOCK))
    assert result.passed, result.headline()


def test_duplicate_customer_in_dim_blocks(marts) -> None:
    marts.execute("insert into marts.dim_customers values ('c1', 'a@x.de', '2025-01-01', true)")
    result = validate(marts, mart_suite("dim_customers", CLOCK))
    assert result.outcome("duplicate_customer_id").severity == Severity.ERROR
    assert result.outcome("duplicate_customer_id").bad_rows == 2


def test_negative_amount_and_unknown_customer_in_orders_block(marts) -> None:
    marts.execute(
        "insert into marts.fct_orders values ('o3', 'ghost', '2025-05-05', -1, 'completed')"
    )
    result = validate(marts, mart_suite("fct_orders", CLOCK))
    assert result.outcome("invalid_amount").severity == Severity.ERROR
    assert result.outcome("unknown_customer").severity == Severity.ERROR
    assert result.examples["unknown_customer"]["customer_id"].tolist() == ["ghost"]


def test_order_line_with_negative_quantity_blocks_and_a_zero_line_passes(marts) -> None:
    # The registry's negative_quantity: staging keeps a zero line (a free gift), so it passes.
    marts.execute("insert into marts.fct_order_items values ('o1', 'p3', 0, 5.0)")
    assert validate(marts, mart_suite("fct_order_items", CLOCK)).outcome("negative_quantity").passed
    marts.execute("insert into marts.fct_order_items values ('o1', 'p4', -1, 5.0)")
    result = validate(marts, mart_suite("fct_order_items", CLOCK))
    assert result.outcome("negative_quantity").severity == Severity.ERROR


def test_features_of_the_partition_pass_when_every_earlier_customer_has_one_row(marts) -> None:
    result = _features(marts)
    assert result.passed, result.headline()
    assert result.rows == 2  # c3 signed up after D; the 05-31 row is another partition


def test_features_leaking_data_from_after_the_campaign_date_block(marts) -> None:
    marts.execute("update marts.customer_features set days_since_last_order = -2 "
                  "where customer_id = 'c2' and as_of_date = '2025-06-01'")  # fmt: skip
    result = _features(marts)
    assert result.outcome("negative_days_since_last_order").severity == Severity.ERROR


def test_share_out_of_range_blocks(marts) -> None:
    marts.execute("update marts.customer_features set share_shoes = 1.5 where customer_id = 'c1'")
    result = _features(marts)
    assert result.outcome("share_shoes_out_of_range").bad_rows == 1  # only partition D counted


def test_missing_customer_rows_in_the_partition_block(marts) -> None:
    marts.execute("delete from marts.customer_features where customer_id = 'c2'")
    result = _features(marts)
    assert result.outcome("customers_covered").severity == Severity.ERROR
    assert result.outcome("customers_covered").observed == pytest.approx(0.5)


def test_a_partition_without_rows_blocks(marts) -> None:
    result = _features(marts, as_of="2025-07-01")
    assert result.outcome("row_count").severity == Severity.ERROR
