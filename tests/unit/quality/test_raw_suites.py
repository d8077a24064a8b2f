"""The landing-table suites: what warns (quarantined rows), what blocks, and what they report."""

from __future__ import annotations

import dataclasses

import pytest
from quality_shop import NOW, RAW_COLUMNS, add_rows

from tessera.quality.runner import validate
from tessera.quality.suites import Clock, Severity, raw_suite

CLOCK = Clock(now=NOW, as_of="2025-06-01")


@pytest.mark.parametrize("table", list(RAW_COLUMNS))
def test_clean_landing_table_meets_every_expectation(shop, table) -> None:
    result = validate(shop, raw_suite(table, CLOCK))
    assert result.passed, result.headline()
    assert result.outcomes and all(o.passed for o in result.outcomes)


def test_one_text_amount_warns_and_shows_its_file_and_row(shop) -> None:
    add_rows(shop, "orders", [(f"o{i}", "c1", "2025-04-05", "10", "EUR", "completed")
                              for i in range(10, 210)])  # fmt: skip
    add_rows(shop, "orders", [("o9", "c1", "2025-04-05", "abc", "EUR", "completed")])
    result = validate(shop, raw_suite("orders", CLOCK))
    outcome = result.outcome("unparseable_number")
    assert result.severity == Severity.WARN
    assert outcome.severity == Severity.WARN and outcome.bad_rows == 1
    example = result.examples["unparseable_number"]
    assert example[["order_id", "amount", "_source_file", "_source_row"]].values.tolist() == [
        ["o9", "abc", "orders/part-0.csv", 204]
    ]
    assert "unparseable_number (amount) [warn]" in result.headline()


@pytest.mark.parametrize("text", ["NaN", "nan", "Infinity", "-Infinity", "inf", "1e309"])
def test_a_non_finite_amount_is_unparseable_as_in_staging(shop, text) -> None:
    add_rows(shop, "orders", [("o9", "c1", "2025-04-05", text, "EUR", "completed")])
    result = validate(shop, raw_suite("orders", CLOCK))
    assert result.outcome("unparseable_number").bad_rows == 1


def test_a_column_of_the_wrong_type_blocks(shop) -> None:
    shop.execute("update raw.orders set amount = 'twelve'")
    result = validate(shop, raw_suite("orders", CLOCK))
    assert result.severity == Severity.ERROR
    assert result.outcome("unparseable_number").observed == pytest.approx(1.0)
    assert "unparseable_number (amount) [error]: observed 100.00%" in result.headline()
    assert "amount" in result.to_markdown()


def test_orders_for_unknown_customers_block_above_the_orphan_share(shop) -> None:
    add_rows(shop, "orders", [("o99", "ghost", "2025-04-05", "5", "EUR", "completed")])
    result = validate(shop, raw_suite("orders", CLOCK))
    outcome = result.outcome("unknown_customer")
    assert outcome.severity == Severity.ERROR and outcome.bad_rows == 1
    assert result.examples["unknown_customer"]["customer_id"].tolist() == ["ghost"]


def test_duplicated_orders_count_the_repeated_copies_and_show_them(shop) -> None:
    add_rows(shop, "orders", [CLEAN_ORDER_COPY])
    result = validate(shop, raw_suite("orders", CLOCK))
    outcome = result.outcome("duplicate_key")
    assert outcome.bad_rows == 1
    assert outcome.severity == Severity.ERROR  # 1 of 4 rows: a feed problem, not a stray row
    assert result.examples["duplicate_key"]["_source_row"].tolist() == [4]


CLEAN_ORDER_COPY = ("o1", "c1", "2025-04-01T10:00:00", "12.50", "EUR", "completed")


def test_timestamps_later_than_now_are_flagged_but_earlier_data_after_as_of_is_not(shop) -> None:
    # 2025-06-10 is after the campaign date (normal in a backfill) but before now.
    add_rows(shop, "events", [("c1", "2025-06-10T00:00:00", "search", None),
                              ("c1", "2099-01-01T00:00:00", "search", None)])  # fmt: skip
    result = validate(shop, raw_suite("events", CLOCK))
    assert result.outcome("future_timestamp").bad_rows == 1
    assert result.examples["future_timestamp"]["occurred_at"].tolist() == ["2099-01-01T00:00:00"]


CLEAN_CUSTOMER = ("c1", "ann@example.com", "+49 170 1234567", "2025-01-01T09:00:00", "DE", "true",
                  "false")  # fmt: skip


def test_customer_updates_and_re_sends_are_no_duplicates(shop) -> None:
    opted_out = (*CLEAN_CUSTOMER[:5], "false", "false")
    add_rows(shop, "customers", [(*opted_out, "2025-06-01T00:00:00Z")])  # same file, later
    add_rows(shop, "customers", [opted_out], source_file="customers/update.csv")  # later file
    # A re-send of the first copy, written a little differently.
    add_rows(shop, "customers", [("c1", " ANN@example.com ", *CLEAN_CUSTOMER[2:])])
    result = validate(shop, raw_suite("customers", CLOCK))
    assert result.outcome("duplicate_key").bad_rows == 0


def test_conflicting_customer_copies_in_one_file_are_duplicates(shop) -> None:
    add_rows(shop, "customers", [(*CLEAN_CUSTOMER[:5], "false", "false")])
    result = validate(shop, raw_suite("customers", CLOCK))
    outcome = result.outcome("duplicate_key")
    assert outcome.bad_rows == 1 and not outcome.passed


def test_event_type_outside_the_allowed_set_is_reported(shop) -> None:
    add_rows(shop, "events", [("c1", "2025-05-01", "purchase", None)])
    result = validate(shop, raw_suite("events", CLOCK))
    assert result.outcome("invalid_event_type").bad_rows == 1
    assert not result.outcome("invalid_event_type").passed


def test_freshness_judges_the_latest_event_before_the_campaign_date(shop) -> None:
    fresh = validate(shop, raw_suite("events", CLOCK))
    assert fresh.outcome("freshness_occurred_at").observed == pytest.approx(1.0)  # 23:00 -> 24:00
    stale = validate(shop, raw_suite("events", Clock(now=NOW, as_of="2025-06-10")))
    outcome = stale.outcome("freshness_occurred_at")
    assert outcome.severity == Severity.ERROR and outcome.observed == pytest.approx(9 * 24 - 8)


def test_freshness_is_not_judged_without_a_campaign_date(shop) -> None:
    result = validate(shop, raw_suite("events", Clock(now=NOW)))
    assert "freshness_occurred_at" not in {o.rule for o in result.outcomes}


def test_malformed_contacts_warn_without_blocking(shop) -> None:
    add_rows(
        shop,
        "customers",
        [
            ("c4", "not-an-email", "12", "2025-01-01", "DE", "true", "true"),
            ("c5", None, None, "2025-01-01", "DE", "true", "true"),
        ],
    )
    result = validate(shop, raw_suite("customers", CLOCK))
    assert result.severity == Severity.WARN
    assert result.outcome("bad_email").bad_rows == 1
    assert result.outcome("bad_phone").bad_rows == 1


def test_order_lines_with_negative_quantity_or_unknown_order_are_reported(shop) -> None:
    # A zero quantity is staged (as staging always did): the gate and staging share one rule.
    add_rows(
        shop,
        "order_items",
        [("o1", "p9", "shoes", "-1", "3"), ("o77", "p9", "shoes", "1", "3"),
         ("o1", "p8", "shoes", "0", "3")],
    )  # fmt: skip
    result = validate(shop, raw_suite("order_items", CLOCK))
    assert result.outcome("negative_quantity").bad_rows == 1
    assert result.outcome("unknown_order").bad_rows == 1
    assert result.severity == Severity.ERROR


def test_missing_contract_column_is_a_blocking_problem_naming_it(shop) -> None:
    shop.execute("alter table raw.orders drop column amount")
    result = validate(shop, raw_suite("orders", CLOCK))
    assert result.severity == Severity.ERROR
    assert "missing column(s) amount" in result.headline()


def test_missing_table_is_reported_not_raised(shop) -> None:
    shop.execute("drop table raw.events")
    result = validate(shop, raw_suite("events", CLOCK))
    assert result.severity == Severity.ERROR and "does not exist" in result.headline()


def test_empty_table_blocks_on_row_count(shop) -> None:
    shop.execute("delete from raw.customers")
    result = validate(shop, raw_suite("customers", CLOCK))
    assert result.outcome("row_count").severity == Severity.ERROR


@pytest.mark.parametrize(
    ("previous", "expected"),
    [(3, None), (2, None), (1, Severity.WARN), (30, Severity.ERROR)],
)
def test_row_count_change_is_judged_against_the_previous_count(shop, previous, expected) -> None:
    # 3 rows now: ratio 1 passes, 1.5 sits on the warn edge (passes), 3.0 on the error edge
    # (warns), 0.1 blocks.
    suite = dataclasses.replace(raw_suite("events", CLOCK), previous_rows=previous)
    outcome = validate(shop, suite).outcome("row_count_change")
    assert outcome.severity == expected, outcome


def test_ten_fold_spike_blocks(shop) -> None:
    add_rows(shop, "events", [("c1", "2025-05-01", "search", None)] * 27)
    suite = dataclasses.replace(raw_suite("events", CLOCK), previous_rows=3)
    result = validate(shop, suite)
    assert result.outcome("row_count_change").severity == Severity.ERROR
    assert "row_count_change [error]: observed 10" in result.headline()
