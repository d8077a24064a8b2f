"""Messages other systems sent count against the frequency caps (raw.external_contacts)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest
from campaign_builders import D0, make_catalog, membership

from tessera.campaigns.daily import external_history
from tessera.campaigns.engine import assign_campaigns
from tessera.campaigns.errors import MatrixInputError


def _warehouse(rows: list[dict]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema raw")
    con.execute("create schema marts")
    customers = pd.DataFrame(
        {"customer_id": ["c", "d"], "email": ["Anna@Shop.example", None], "phone": [None, "+4915"]}
    )
    con.register("_c", customers)
    con.execute("create table marts.dim_customers as select * from _c")
    frame = (
        pd.DataFrame(
            [
                {
                    "customer_id": None,
                    "address": None,
                    "campaign": None,
                    "subject": None,
                    "_source_file": "external_contacts/service.csv",
                    "_source_row": i + 1,
                    **r,
                }
                for i, r in enumerate(rows)
            ]
        )
        .astype(str)
        .replace({"None": None})
    )
    con.register("_x", frame)
    con.execute("create table raw.external_contacts as select * from _x")
    return con


def _contact(**values) -> dict:
    return {
        "channel": "email",
        "sent_at": str(D0 - dt.timedelta(days=1)),
        "department": "service",
        "message_type": "transactional",
        **values,
    }


def test_contacts_match_customers_by_id_email_in_any_case_or_phone() -> None:
    con = _warehouse(
        [
            _contact(customer_id="c"),
            _contact(address="anna@shop.example"),
            _contact(address="+4915", channel="SMS"),
            _contact(address="nobody@else.example"),
        ]
    )
    history = external_history(con, D0, 7)
    assert sorted(zip(history["customer_id"], history["channel"], strict=True)) == [
        ("c", "email"),
        ("c", "email"),
        ("d", "sms"),
    ]
    assert set(history["campaign_id"]) == {"external:service"}
    assert not history["is_control"].any()


def test_only_contacts_inside_the_cap_window_before_the_date_count() -> None:
    con = _warehouse(
        [
            _contact(customer_id="c", sent_at=str(D0)),  # on D: not history yet
            _contact(customer_id="c", sent_at=str(D0 - dt.timedelta(days=7))),  # window start
            _contact(customer_id="c", sent_at=str(D0 - dt.timedelta(days=8))),  # outside
        ]
    )
    history = external_history(con, D0, 7)
    assert pd.to_datetime(history["as_of_date"]).dt.date.tolist() == [D0 - dt.timedelta(days=7)]


def test_an_external_contact_uses_up_the_cap() -> None:
    cat = make_catalog(
        [{"id": "news", "target_groups": ["a"]}],
        caps=[{"id": "c1", "channels": ["email"], "max_contacts": 1, "days": 7}],
    )
    con = _warehouse([_contact(customer_id="c")])
    without = assign_campaigns(membership({"c": ["a"]}), cat, D0)
    assert without.assignments.num_rows == 1
    capped = assign_campaigns(membership({"c": ["a"]}), cat, D0, external_history(con, D0, 7))
    assert capped.assignments.num_rows == 0
    reasons = capped.exclusions.to_pandas()[["customer_id", "campaign_id", "reason"]]
    assert reasons.values.tolist() == [["c", "news", "cap"]]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (_contact(customer_id="c", sent_at="yesterday"), "sent_at 'yesterday' is not a timestamp"),
        (_contact(customer_id="c", channel="fax"), "channel 'fax' is not one of"),
        (_contact(), "neither customer_id nor address is given"),
    ],
)
def test_a_contact_the_caps_cannot_count_is_refused_with_its_file_and_row(row, problem) -> None:
    con = _warehouse([_contact(customer_id="c"), row])
    with pytest.raises(MatrixInputError, match="external_contacts/service.csv row 2") as err:
        external_history(con, D0, 7)
    assert problem in str(err.value)


def test_no_external_contacts_landed_means_no_extra_history() -> None:
    assert external_history(duckdb.connect(), D0, 7) is None


def test_an_empty_landing_table_adds_nothing() -> None:
    con = duckdb.connect()
    con.execute("create schema raw")
    con.execute(
        "create table raw.external_contacts (customer_id varchar, address varchar, "
        "channel varchar, sent_at varchar, department varchar, message_type varchar, "
        "campaign varchar, subject varchar, _source_file varchar, _source_row bigint)"
    )
    assert external_history(con, D0, 7) is None


def test_without_a_customer_table_contacts_count_by_customer_id() -> None:
    con = _warehouse([_contact(customer_id="c"), _contact(address="anna@shop.example")])
    con.execute("drop table marts.dim_customers")
    history = external_history(con, D0, 7)
    assert history["customer_id"].tolist() == ["c"]


@pytest.mark.parametrize(
    ("timezone", "day"),
    [("Europe/Berlin", D0 - dt.timedelta(days=1)), ("UTC", D0 - dt.timedelta(days=2))],
)
def test_an_external_message_just_after_the_shops_midnight_counts_on_the_shops_date(
    timezone, day
) -> None:
    # 23:30 UTC two days before D0 is 00:30 the day before D0 in Berlin (UTC+1 in March)
    late = dt.datetime.combine(D0 - dt.timedelta(days=2), dt.time(23, 30))
    con = _warehouse([_contact(customer_id="c", sent_at=f"{late.isoformat()}+00:00")])
    history = external_history(con, D0, 7, timezone)
    assert history["as_of_date"].dt.date.tolist() == [day]
    # a cap window of one day before D0 sees it only where it fell on that day
    assert len(external_history(con, D0, 1, timezone)) == (1 if timezone != "UTC" else 0)
