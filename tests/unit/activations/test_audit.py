"""audit.messages holds Tessera's and other systems' messages; collisions are found per rule."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from tessera.activations.audit import build_audit, collisions

D = dt.date(2026, 6, 1)

CAMPAIGNS = pd.DataFrame(
    {
        "campaign_id": ["welcome", "deals"],
        "owner": ["crm", "ecommerce"],
        "name": ["Welcome", "Daily deals"],
        "offer": ["10% off", "free shipping"],
        "transactional": [False, False],
        "message_type": ["onboarding", "broadcast"],
    }
)


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for schema in ("activations", "raw", "marts"):
        con.execute(f"create schema {schema}")
    con.execute(
        "create table activations.outbound_messages as select * from (values "
        "(timestamp '2026-06-01', 'k1', 'welcome', 'C1', 'email'), "
        "(timestamp '2026-06-01', 'k2', 'deals', 'C2', 'email'), "
        "(timestamp '2026-05-31', 'k0', 'deals', 'C1', 'email')) "
        "t(as_of_date, message_key, campaign_id, customer_id, channel)"
    )
    con.execute(
        "create table marts.dim_customers as select * from (values "
        "('C1', 'anna@x.example', null), ('C2', null, '+4915')) t(customer_id, email, phone)"
    )
    con.execute(
        "create table raw.external_contacts as select * from (values "
        "(null, 'Anna@X.example', 'email', '2026-06-01 08:00', 'service', 'transactional', "
        "null, 'Order shipped'), "
        "('C1', null, 'sms', '2026-06-01 09:00', 'service', 'transactional', null, 'Parcel'), "
        "('C2', null, 'email', '2026-05-30 09:00', 'service', 'transactional', null, 'old')) "
        "t(customer_id, address, channel, sent_at, department, message_type, campaign, subject)"
    )
    return con


def test_the_audit_holds_every_message_of_the_date_with_department_and_owner() -> None:
    con = _con()
    day = build_audit(con, D, CAMPAIGNS)
    rows = con.execute(
        "select source, customer_id, department, owner, subject from audit.messages "
        "order by source, customer_id, subject"
    ).fetchall()
    assert rows == [
        ("external", "C1", "service", "service", "Order shipped"),
        ("external", "C1", "service", "service", "Parcel"),
        ("tessera", "C1", "crm", "crm", "Welcome"),
        ("tessera", "C2", "ecommerce", "ecommerce", "Daily deals"),
    ]
    assert len(day.messages) == 4


def test_collisions_name_the_customer_and_the_rule() -> None:
    con = _con()
    day = build_audit(con, D, CAMPAIGNS)
    assert day.collisions[["customer_id", "rule", "messages"]].values.tolist() == [
        ["C1", "departments", 3],
        ["C1", "too_many", 3],
    ]
    assert day.collisions.loc[day.collisions["rule"] == "departments", "detail"].item() == (
        "crm, service"
    )
    assert day.by_rule == {"departments": 1, "too_many": 1}


def test_two_offers_to_one_customer_on_a_date_conflict() -> None:
    messages = pd.DataFrame(
        {
            "customer_id": ["C1", "C1", "C2"],
            "department": ["crm", "crm", "crm"],
            "offer": ["10% off", "free shipping", "10% off"],
        }
    )
    found = collisions(messages, D)
    assert found[["customer_id", "rule", "detail"]].values.tolist() == [
        ["C1", "conflicting_offers", "10% off, free shipping"]
    ]


def test_a_broadcast_and_an_onboarding_message_on_one_day_collide_whoever_sent_them() -> None:
    con = _con()
    # Another system's newsletter (a broadcast) on the day Tessera's welcome (onboarding) goes.
    con.execute(
        "insert into raw.external_contacts values (null, 'anna@x.example', 'email',"
        " '2026-06-01 12:00', 'newsletter_team', 'BROADCAST', null, 'June news')"
    )
    day = build_audit(con, D, CAMPAIGNS)
    both = day.collisions[day.collisions["rule"] == "broadcast_and_onboarding"]
    assert both["customer_id"].tolist() == ["C1"]
    # The catalog's message type is what the audit records for Tessera's own messages.
    kinds = con.execute(
        "select campaign_id, message_type from audit.messages where source = 'tessera' order by 1"
    ).fetchall()
    assert kinds == [("deals", "broadcast"), ("welcome", "onboarding")]


def test_a_rerun_of_the_date_replaces_its_audit() -> None:
    con = _con()
    build_audit(con, D, CAMPAIGNS)
    build_audit(con, D, CAMPAIGNS)
    assert con.execute("select count(*) from audit.messages").fetchall() == [(4,)]
    assert con.execute("select count(*) from audit.collisions").fetchall() == [(2,)]


def test_a_date_without_messages_writes_empty_tables() -> None:
    con = duckdb.connect()
    day = build_audit(con, D, CAMPAIGNS)
    assert day.messages.empty and day.collisions.empty
    assert con.execute("select count(*) from audit.messages").fetchall() == [(0,)]
