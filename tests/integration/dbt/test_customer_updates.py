"""Customers are a changing table: later copies update a customer, with history, as of D."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest
from dbt_harness import TINY_VARS, Warehouse, failures
from dbt_tiny_shop import CUSTOMERS, append_rows

from tessera.activations.content import ChannelContent, content_frame
from tessera.activations.outbound import build_outbound

pytestmark = pytest.mark.integration

#: The customers models and their tests (row accounting, contiguous versions).
CUSTOMER_MODELS = (
    "base_shop__customers stg_shop__customers quarantine_customers dim_customers_history "
    "dim_customers"
)
#: c1 as landed in the tiny shop (opted in to e-mail), and that row with new values.
C1 = CUSTOMERS[0][0]


def c1_with(**changes: str | None) -> tuple[str | None, ...]:
    columns = ("customer_id", "email", "phone", "created_at", "country", "email_opt_in",
               "sms_opt_in", "first_name", "updated_at")  # fmt: skip
    row = dict(zip(columns, (*C1, None), strict=True))
    return tuple({**row, **changes}[c] for c in columns)


def build(warehouse: Warehouse, as_of: str | None = None) -> None:
    vars = (
        {**TINY_VARS, "as_of": as_of}
        if as_of
        else {k: v for k, v in TINY_VARS.items() if k != "as_of"}
    )
    result = warehouse.dbt("build", "--select", CUSTOMER_MODELS, vars=vars)
    assert failures(result) == [], failures(result)


def c1_state(warehouse: Warehouse, as_of: str | None = None) -> tuple:
    """c1's e-mail and consent in dim_customers as of `as_of` (None: current), after `build`."""
    vars = {"as_of": as_of} if as_of else {}
    result = warehouse.dbt("run", "--select", "dim_customers", vars=vars)
    assert failures(result) == [], failures(result)
    rows = warehouse.query(
        "select email, is_email_opt_in from marts.dim_customers where customer_id = 'c1'"
    )
    assert len(rows) == 1
    return tuple(rows.iloc[0])


def c1_versions(warehouse: Warehouse) -> list[tuple]:
    frame = warehouse.query(
        "select customer_version, cast(valid_from as varchar) as valid_from, "
        "cast(valid_to as varchar) as valid_to, is_email_opt_in, _source_file "
        "from marts.dim_customers_history where customer_id = 'c1' order by customer_version"
    )
    return [tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False)]


def land(warehouse: Warehouse, rows: list, name: str, modified_at: str) -> None:
    with duckdb.connect(str(warehouse.path)) as con:
        append_rows(con, "customers", rows, f"customers/{name}", modified_at=modified_at)


def quarantined(warehouse: Warehouse, name: str) -> list[tuple]:
    frame = warehouse.query(
        "select _source_row, reason from quarantine.quarantine_customers "
        "where _source_file = ? order by 1",
        [f"customers/{name}"],
    )
    return list(frame.itertuples(index=False, name=None))


def test_an_opt_out_with_updated_at_holds_from_then_on(warehouse_copy: Warehouse) -> None:
    name = "update-2025-06-03.csv"
    land(
        warehouse_copy,
        [c1_with(email_opt_in="false", updated_at="2025-06-03T12:00:00+02:00")],
        name,
        modified_at="2025-06-03 11:00:00",
    )

    build(warehouse_copy)
    assert quarantined(warehouse_copy, name) == []
    # Before the update (10:00 UTC on 06-03) the old consent stands; from 06-04 the opt-out.
    assert c1_state(warehouse_copy, "2025-06-03") == ("alice@example.com", True)
    assert c1_state(warehouse_copy, "2025-06-04") == ("alice@example.com", False)
    # Without a campaign date (the daily unpartitioned build): the current state.
    assert c1_state(warehouse_copy) == ("alice@example.com", False)
    assert c1_versions(warehouse_copy) == [
        (1, None, "2025-06-03 10:00:00", True, "customers/part-0.csv"),
        (2, "2025-06-03 10:00:00", None, False, f"customers/{name}"),
    ]


def test_the_opt_out_keeps_the_customer_out_of_outbound_messages(
    warehouse_copy: Warehouse,
) -> None:
    land(
        warehouse_copy,
        [c1_with(email_opt_in="false", updated_at="2025-06-03T10:00:00Z")],
        "update-2025-06-03.csv",
        modified_at="2025-06-03 11:00:00",
    )
    day = dt.date(2025, 6, 5)
    assignments = pd.DataFrame(
        {
            "as_of_date": [day],
            "customer_id": ["c1"],
            "campaign_id": ["welcome"],
            "channel": ["email"],
            "is_control": [False],
        }
    )
    content = content_frame([ChannelContent("welcome", "email", "d-abc", "10% off")])

    def outbound() -> tuple[pd.DataFrame, pd.DataFrame]:
        customers = warehouse_copy.query("select * from marts.dim_customers")
        return build_outbound(
            as_of=day,
            assignments=assignments,
            customers=customers,
            features=pd.DataFrame({"customer_id": ["c1"], "top_category": ["ski"]}),
            scores=pd.DataFrame({"customer_id": ["c1"], "top_drivers": [None]}),
            suppressions=pd.DataFrame(columns=["customer_id", "channel", "event", "occurred_at"]),
            content=content,
        )

    build(warehouse_copy, "2025-06-02")
    messages, _ = outbound()
    assert list(messages.customer_id) == ["c1"]

    c1_state(warehouse_copy)  # dim_customers rebuilt without a date: the current state
    messages, excluded = outbound()
    assert messages.empty
    assert list(excluded.customer_id) == ["c1"]


def test_without_updated_at_the_later_landed_file_wins(warehouse_copy: Warehouse) -> None:
    # Landed after the tiny shop's files (2025-06-01 12:00), though its name sorts first.
    land(
        warehouse_copy,
        [c1_with(email="alice@new.example", email_opt_in="no")],
        "2025-06-03.csv",
        modified_at="2025-06-03 08:00:00",
    )
    # An older file: its state is superseded by part-0.csv, whatever its name.
    land(
        warehouse_copy,
        [c1_with(email="alice@old.example")],
        "zz-restored.csv",
        modified_at="2025-01-01 00:00:00",
    )

    # No updated_at: the change has no time of its own, so it holds from created_at on.
    build(warehouse_copy, "2025-06-02")
    assert c1_versions(warehouse_copy) == [(1, None, None, False, "customers/2025-06-03.csv")]
    assert c1_state(warehouse_copy) == ("alice@new.example", False)
    assert quarantined(warehouse_copy, "2025-06-03.csv") == []
    assert quarantined(warehouse_copy, "zz-restored.csv") == []


def test_files_landed_at_the_same_time_are_ordered_by_name(warehouse_copy: Warehouse) -> None:
    for name, email in (("b.csv", "alice@b.example"), ("a.csv", "alice@a.example")):
        land(warehouse_copy, [c1_with(email=email)], name, modified_at="2025-06-03 08:00:00")
    build(warehouse_copy)
    got = warehouse_copy.query("select email from marts.dim_customers where customer_id = 'c1'")
    assert list(got.email) == ["alice@b.example"]


def test_re_sent_identical_rows_are_neither_quarantined_nor_new_versions(
    warehouse_copy: Warehouse,
) -> None:
    # The whole customers file again, and c1 re-sent with a later updated_at but no change.
    land(warehouse_copy, [row for row, _, _ in CUSTOMERS], "resend.csv", "2025-06-04 00:00:00")
    land(warehouse_copy, [c1_with(updated_at="2025-06-04T00:00:00Z")], "c1.csv", "2025-06-04")

    build(warehouse_copy)
    expected = [
        (i, reason)
        for i, (_, reason, blocking) in enumerate(CUSTOMERS, start=1)
        if reason is not None
    ]
    # The re-sent file breaks exactly the rules the original broke, nothing more.
    assert quarantined(warehouse_copy, "resend.csv") == expected
    assert quarantined(warehouse_copy, "c1.csv") == []
    assert [v[0] for v in c1_versions(warehouse_copy)] == [1]
    staged = warehouse_copy.query(
        "select count(*) as n from staging.stg_shop__customers where customer_id = 'c1'"
    ).n[0]
    assert staged == 2 + 2 + 1  # each staged copy is history: raw = staged + blocked still


def test_one_file_may_hold_a_customer_at_several_updated_at(warehouse_copy: Warehouse) -> None:
    name = "changelog.csv"
    land(
        warehouse_copy,
        [
            c1_with(email_opt_in="false", updated_at="2025-06-10T00:00:00Z"),
            c1_with(email_opt_in="true", updated_at="2025-06-05T00:00:00Z"),
            # Same file, same updated_at, different values: a conflict; the first copy wins.
            c1_with(email_opt_in="false", updated_at="2025-06-05T00:00:00Z"),
            c1_with(email_opt_in="false", updated_at="soon"),
        ],
        name,
        modified_at="2025-06-11 00:00:00",
    )
    build(warehouse_copy)
    assert quarantined(warehouse_copy, name) == [(3, "duplicate_key"), (4, "unparseable_timestamp")]
    # 06-05 repeats the opt-in of version 1, so it is no new version.
    assert c1_versions(warehouse_copy) == [
        (1, None, "2025-06-10 00:00:00", True, "customers/part-0.csv"),
        (2, "2025-06-10 00:00:00", None, False, f"customers/{name}"),
    ]
    assert c1_state(warehouse_copy, "2025-06-10") == ("alice@example.com", True)
    assert c1_state(warehouse_copy, "2025-06-11") == ("alice@example.com", False)


def test_features_use_the_consent_in_effect_at_their_date(warehouse_copy: Warehouse) -> None:
    land(
        warehouse_copy,
        [c1_with(email_opt_in="false", updated_at="2025-05-28T00:00:00Z")],
        "update.csv",
        modified_at="2025-05-28 01:00:00",
    )
    result = warehouse_copy.dbt(
        "build", "--select", f"{CUSTOMER_MODELS} customer_feature_snapshots", vars=TINY_VARS
    )
    assert failures(result) == [], failures(result)
    got = warehouse_copy.query(
        "select cast(as_of_date as varchar) as d, is_email_opt_in "
        "from marts.customer_feature_snapshots where customer_id = 'c1' order by 1"
    )
    assert list(got.itertuples(index=False, name=None)) == [
        ("2025-05-19", True),
        ("2025-05-26", True),
        ("2025-06-02", False),
    ]
