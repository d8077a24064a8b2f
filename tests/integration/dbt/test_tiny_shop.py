"""dbt build on the hand-written tiny shop: quarantine, UTC normalisation and feature values."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest
from dbt_harness import TINY_VARS, Warehouse, failures
from dbt_tiny_shop import AS_OF, LATE_ROWS, NON_FINITE, TABLES, append_rows

pytestmark = pytest.mark.integration

STAGED = {
    "customers": "staging.stg_shop__customers",
    "orders": "staging.stg_shop__orders",
    "order_items": "staging.stg_shop__order_items",
    "events": "staging.stg_shop__events",
    "campaign_responses": "staging.stg_shop__campaign_responses",
}


def _features(warehouse: Warehouse, as_of: str = AS_OF) -> pd.DataFrame:
    frame = warehouse.query(
        "select * from marts.customer_features where as_of_date = cast(? as date) "
        "order by customer_id",
        [as_of],
    )
    return frame.reset_index(drop=True)


def test_build_passes_with_every_model_and_test(tiny_warehouse: Warehouse) -> None:
    result = tiny_warehouse.build_result  # type: ignore[attr-defined]
    assert failures(result) == []
    assert result.success
    kinds = {r.node.resource_type for r in result.result.results}
    assert {"model", "test", "unit_test"} <= {str(k) for k in kinds}


@pytest.mark.parametrize("table", list(TABLES))
def test_every_landed_row_is_staged_or_quarantined_as_blocking(
    tiny_warehouse: Warehouse, table: str
) -> None:
    raw = tiny_warehouse.query(f"select count(*) as n from raw.{table}").n[0]
    staged = tiny_warehouse.query(f"select count(*) as n from {STAGED[table]}").n[0]
    blocked = tiny_warehouse.query(
        f"select count(*) as n from quarantine.quarantine_{table} where is_blocking"
    ).n[0]
    assert raw == staged + blocked
    assert blocked > 0


@pytest.mark.parametrize("table", list(TABLES))
def test_each_broken_row_is_quarantined_with_its_reason(
    tiny_warehouse: Warehouse, table: str
) -> None:
    got = tiny_warehouse.query(
        f"select _source_row, reason, is_blocking from quarantine.quarantine_{table} "
        "order by _source_row"
    )
    expected = [
        (row_number, reason, blocking)
        for row_number, (_, reason, blocking) in enumerate(TABLES[table], start=1)
        if reason is not None
    ]
    assert list(got.itertuples(index=False, name=None)) == expected


def test_quarantine_keeps_the_original_text(tiny_warehouse: Warehouse) -> None:
    row = tiny_warehouse.query(
        "select amount, reason from quarantine.quarantine_orders where order_id = 'o8'"
    )
    assert list(row.itertuples(index=False, name=None)) == [("abc", "unparseable_number")]


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("orders", "amount"),
        ("order_items", "quantity"),
        ("order_items", "unit_price"),
        ("campaign_responses", "revenue"),
    ],
)
def test_non_finite_numbers_are_quarantined_as_unparseable(
    tiny_warehouse: Warehouse, table: str, column: str
) -> None:
    got = tiny_warehouse.query(
        f"select {column} as text, reason, is_blocking from quarantine.quarantine_{table} "
        f"where {column} in ({', '.join('?' for _ in NON_FINITE)})",
        list(NON_FINITE),
    )
    assert sorted(got.text) == sorted(NON_FINITE)
    assert set(got.reason) == {"unparseable_number"} and got.is_blocking.all()


def test_customer_with_bad_email_stays_with_a_flag(tiny_warehouse: Warehouse) -> None:
    c2 = tiny_warehouse.query(
        "select email, is_email_valid, phone, is_phone_valid from marts.dim_customers "
        "where customer_id = 'c2'"
    )
    assert list(c2.itertuples(index=False, name=None)) == [
        ("bob@example", False, "+447700900456", True)
    ]
    c1 = tiny_warehouse.query(
        "select email, is_email_valid from marts.dim_customers where customer_id = 'c1'"
    )
    assert list(c1.itertuples(index=False, name=None)) == [("alice@example.com", True)]


def test_timestamps_with_offsets_are_normalised_to_utc(tiny_warehouse: Warehouse) -> None:
    orders = tiny_warehouse.query(
        "select order_id, ordered_at, order_date from marts.fct_orders "
        "where order_id in ('o1', 'o3', 'o5') order by order_id"
    )
    assert list(orders.ordered_at) == [
        pd.Timestamp("2025-05-30 08:00:00"),
        pd.Timestamp("2024-06-14 23:30:00"),
        pd.Timestamp("2025-06-02 01:30:00"),
    ]
    assert [pd.Timestamp(d).date() for d in orders.order_date] == [
        dt.date(2025, 5, 30),
        dt.date(2024, 6, 14),
        dt.date(2025, 6, 2),
    ]
    created = tiny_warehouse.query(
        "select created_at from marts.dim_customers where customer_id = 'c2'"
    ).created_at[0]
    assert created == pd.Timestamp("2025-05-01 10:00:00")


def test_item_counts_sum_the_order_lines(tiny_warehouse: Warehouse) -> None:
    counts = tiny_warehouse.query(
        "select order_id, item_count from marts.fct_orders where order_id in ('o1', 'o3') "
        "order by order_id"
    )
    assert list(counts.itertuples(index=False, name=None)) == [("o1", 3), ("o3", 1)]


def test_cancelled_orders_are_kept_but_not_revenue(tiny_warehouse: Warehouse) -> None:
    status = tiny_warehouse.query("select status from marts.fct_orders where order_id = 'o4'")
    assert list(status.status) == ["cancelled"]
    c1 = _features(tiny_warehouse).set_index("customer_id").loc["c1"]
    assert c1.revenue_total == pytest.approx(180.0)


def test_features_match_the_hand_computed_example(tiny_warehouse: Warehouse) -> None:
    features = _features(tiny_warehouse).set_index("customer_id")
    # c3 registers after the campaign date; the other three are in.
    assert sorted(features.index) == ["c1", "c2", "c4"]
    c1, c2, c4 = features.loc["c1"], features.loc["c2"], features.loc["c4"]

    assert c1.tenure_days == (dt.date(2025, 6, 2) - dt.date(2024, 1, 10)).days
    assert (c1.orders_30d, c1.orders_90d, c1.orders_365d, c1.orders_total) == (1, 1, 3, 3)
    assert (c1.revenue_30d, c1.revenue_90d, c1.revenue_365d) == (100.0, 100.0, 180.0)
    assert c1.avg_order_value == pytest.approx(60.0)
    assert (c1.days_since_last_order, c1.days_since_first_order) == (3, 353)
    span = pd.Timestamp("2025-05-30 08:00") - pd.Timestamp("2024-06-14 23:30")
    assert c1.mean_interpurchase_days == pytest.approx(span.total_seconds() / 86400 / 2)
    assert c1.order_trend_ratio == pytest.approx((1 + 1) / (3 * 90 / 365 + 1))
    assert c1.revenue_trend_ratio == pytest.approx((100 + 1) / (180 * 90 / 365 + 1))
    assert (c1.items_handbags, c1.items_shoes, c1.items_ski, c1.items_beauty) == (1, 3, 1, 0)
    assert c1.share_handbags == pytest.approx(60 / 180)
    assert c1.share_shoes == pytest.approx(90 / 180)
    assert c1.share_ski == pytest.approx(30 / 180)
    assert c1.top_category == "shoes"
    assert (c1.events_7d, c1.events_30d, c1.page_views_30d, c1.product_views_30d) == (6, 7, 0, 3)
    assert (c1.searches_30d, c1.app_opens_30d, c1.add_to_cart_30d) == (1, 1, 2)
    assert (c1.days_since_last_event, c1.days_since_last_app_open) == (1, 5)
    assert c1.top_viewed_category_30d == "handbags"
    # Carted 2025-06-01 09:00 and ordered (cancelled) at 20:00: not abandoned; 05-20 was.
    assert not c1.is_cart_abandoned_24h
    assert c1.cart_abandonment_rate_30d == pytest.approx(0.5)
    assert (c1.messages_received_90d, c1.opens_90d, c1.clicks_90d, c1.conversions_90d) == (
        1,
        1,
        1,
        1,
    )
    assert c1.has_ever_responded and c1.days_since_last_response == 22
    assert not (c1.is_unsubscribed or c1.is_bounced or c1.is_spam_reported)
    assert c1._max_source_at == pd.Timestamp("2025-06-01 20:00:00")

    # c2's only order is at 01:30 UTC on the campaign date: not seen.
    assert c2.orders_total == 0 and pd.isna(c2.avg_order_value)
    assert pd.isna(c2.days_since_last_order) and pd.isna(c2.mean_interpurchase_days)
    assert c2.order_trend_ratio == pytest.approx(1.0)
    assert c2.is_cart_abandoned_24h and c2.cart_abandonment_rate_30d == pytest.approx(1.0)
    assert c2.is_bounced and not c2.has_ever_responded
    assert c2.top_category is None or pd.isna(c2.top_category)
    assert c2.top_viewed_category_30d == "shoes"
    assert c2.is_email_opt_in and c2.is_sms_opt_in

    assert c4.tenure_days == 1 and c4.events_30d == 0
    # "maybe" is not consent.
    assert not c4.is_email_opt_in


def test_snapshots_share_the_daily_definitions(tiny_warehouse: Warehouse) -> None:
    snapshots = tiny_warehouse.query(
        "select * from marts.customer_feature_snapshots order by as_of_date, customer_id"
    )
    assert sorted({pd.Timestamp(d).date() for d in snapshots.as_of_date}) == [
        dt.date(2025, 5, 19),
        dt.date(2025, 5, 26),
        dt.date(2025, 6, 2),
    ]
    same_day = snapshots[snapshots.as_of_date == pd.Timestamp(AS_OF)].reset_index(drop=True)
    pd.testing.assert_frame_equal(same_day, _features(tiny_warehouse), check_dtype=False)
    assert (snapshots._max_source_at < pd.to_datetime(snapshots.as_of_date)).all()


def test_rows_at_or_after_as_of_change_no_feature(warehouse_copy: Warehouse) -> None:
    before = _features(warehouse_copy)
    with_late = warehouse_copy
    with duckdb.connect(str(with_late.path)) as con:
        for table, rows in LATE_ROWS.items():
            append_rows(con, table, rows, f"{table}/part-late.csv")

    result = with_late.dbt("run", "--select", "+customer_features", vars=TINY_VARS)

    assert failures(result) == []
    # The late rows are real staged data, only later than the campaign date.
    staged = with_late.query(
        "select count(*) as n from staging.base_shop__orders "
        "where order_id in ('o20', 'o21') and blocking_reason is null"
    )
    assert staged.n[0] == 2
    pd.testing.assert_frame_equal(_features(with_late), before)


def test_rebuilding_a_partition_replaces_it_and_keeps_the_others(
    warehouse_copy: Warehouse,
) -> None:
    before = _features(warehouse_copy)
    other_day = {**TINY_VARS, "as_of": "2025-05-26"}

    first = warehouse_copy.dbt("run", "--select", "customer_features", vars=other_day)
    again = warehouse_copy.dbt("run", "--select", "customer_features", vars=TINY_VARS)

    assert failures(first) == [] and failures(again) == []
    pd.testing.assert_frame_equal(_features(warehouse_copy), before)
    counts = warehouse_copy.query(
        "select cast(as_of_date as varchar) as d, count(*) as n from marts.customer_features "
        "group by 1 order by 1"
    )
    assert list(counts.itertuples(index=False, name=None)) == [("2025-05-26", 2), (AS_OF, 3)]


def test_customer_features_without_as_of_fails_with_a_clear_message(
    warehouse_copy: Warehouse,
) -> None:
    result = warehouse_copy.dbt("run", "--select", "customer_features")

    assert not result.success
    assert any("--vars '{as_of: YYYY-MM-DD}'" in f for f in failures(result))
