"""What lands after the review still counts: late unsubscribes, manual entries, daily ceilings."""

from collections import Counter

import duckdb
import pandas as pd

from tessera.activations.events import write_atomic_parquet
from tessera.activations.keys import message_key
from tessera.orchestration.defs.activations.assets import (
    deliveries,
    outbound_messages,
    send_approval,
)
from tessera.orchestration.defs.activations.resources import ActivationSettings
from tests.integration.activations.test_assets import _run


def _failure(result) -> str:
    return result.get_step_failure_events()[0].event_specific_data.error.message


def _ledger(db, sql):
    with duckdb.connect(str(db)) as con:
        return con.execute(sql).fetchall()


def test_events_and_entries_landed_after_approval_stop_those_messages_at_send_time(setup):
    db, resources, sink = setup
    with duckdb.connect(str(db)) as con:
        # c15 (a control, so no message of its own) shares c6's address, written otherwise.
        con.execute(
            "update marts.dim_customers set email = ' C6@Example.COM ' where customer_id = 'c15'"
        )
    act = ActivationSettings(sink_url=sink.url)
    assert _run([outbound_messages], resources, act).success
    assert _run([send_approval], resources, act).success
    landing = sink.folder.parent / "landing"
    # D 00:30, before the 06:00 send: c2 unsubscribes from an earlier message, c15 too.
    events = pd.DataFrame(
        {
            "message_id": [message_key("winback", "c2", "2025-02-20", "email"), "k-c15-old"],
            "customer_id": ["c2", "c15"],
            "campaign_id": "winback",
            "channel": "email",
            "event": "unsubscribe",
            "occurred_at": "2025-03-01 00:30:00",
            "revenue": None,
        }
    )
    write_atomic_parquet(events, landing / "campaign_responses", "events-late.parquet")
    (landing / "suppressions").mkdir(parents=True)
    (landing / "suppressions" / "crm.csv").write_text(
        "address,channel,reason,since\n  C3@EXAMPLE.com ,,do not contact,2025-02-28\n"
    )
    sent = _run([deliveries], resources, act)
    assert sent.success, _failure(sent)
    addresses = {r["address"] for r in sink.received()}
    assert not addresses & {"c2@example.com", "c3@example.com", "c6@example.com"}
    rows = dict(
        _ledger(
            db,
            "select customer_id, error from activations.deliveries where status = 'suppressed'",
        )
    )
    assert set(rows) == {"c2", "c3", "c6"}
    assert rows["c2"].startswith("unsubscribed") and rows["c6"].startswith("unsubscribed")
    assert rows["c3"].startswith("do_not_contact (suppressions/crm.csv:1 (do not contact))")
    meta = sent.asset_materializations_for_node("activations__deliveries")[0].metadata
    assert meta["suppressed_at_send"].value == 3
    listed = _ledger(
        db, "select count(*) from activations.suppressions where reason = 'do_not_contact'"
    )
    assert listed[0][0] == 1
    # A rerun re-checks and sends nothing more.
    again = _run([deliveries], resources, act)
    assert again.success and sink.stats()["duplicates"] == 0
    assert not {r["address"] for r in sink.received()} & {"c2@example.com", "c3@example.com"}


def test_the_daily_ceiling_counts_every_run_of_the_day_and_no_address_gets_two(setup):
    db, resources, sink = setup
    act = ActivationSettings(sink_url=sink.url, auto_send=True, max_daily_email=300)
    assert _run([outbound_messages, deliveries], resources, act).success
    first = sink.stats()["messages"]
    assert first == 280
    # The matrix rebuilt for the same date under another campaign: new keys, same people.
    with duckdb.connect(str(db)) as con:
        con.execute("update campaigns.campaign_assignments set campaign_id = 'winback_b'")
    assert _run([outbound_messages], resources, act).success
    capped = _run([deliveries], resources, act)
    assert not capped.success and sink.stats()["messages"] == first
    failure = _failure(capped)
    assert "email: 280 sent or in flight on" in failure and "+ 280 planned > ceiling 300" in failure
    # Under a ceiling that allows it, the ledger still refuses a second message to an address.
    roomy = ActivationSettings(sink_url=sink.url, auto_send=True, max_daily_email=10_000)
    assert _run([deliveries], resources, roomy).success
    per_address = Counter(r["address"] for r in sink.received())
    assert sink.stats()["messages"] == first and max(per_address.values()) == 1
    held = dict(
        _ledger(
            db,
            "select split_part(error, ' ', 1), count(*) from activations.deliveries "
            "where campaign_id = 'winback_b' and status = 'suppressed' group by 1",
        )
    )
    # The sink's own events (it unsubscribes and bounces a few) may name the reason first.
    assert sum(held.values()) == 280 and held["address_already_contacted"] > 250


def test_a_held_date_sends_nothing_even_unattended_until_approved_again(setup):
    db, resources, sink = setup
    unattended = ActivationSettings(sink_url=sink.url, auto_send=True)
    assert _run([outbound_messages], resources, unattended).success
    hold = {"ops": {"activations__send_approvals": {"config": {"action": "hold", "note": "x"}}}}
    assert _run([send_approval], resources, unattended, run_config=hold).success
    held = _run([deliveries], resources, unattended)
    assert not held.success and "on hold, held by marketing-ops" in _failure(held)
    assert sink.stats()["messages"] == 0
    bad = {"ops": {"activations__send_approvals": {"config": {"action": "Hold"}}}}
    refused = _run([send_approval], resources, unattended, run_config=bad)
    assert not refused.success and "action='Hold' is not allowed" in _failure(refused)
    assert _run([send_approval], resources, unattended).success  # approving releases the hold
    sent = _run([deliveries], resources, unattended)
    assert sent.success and sink.stats()["messages"] > 0
    meta = (
        _run([send_approval], resources, unattended)
        .asset_materializations_for_node("activations__send_approvals")[0]
        .metadata
    )
    assert meta["changes_since_last_approval"].value.startswith("no change since the approval")
    audit = _ledger(db, "select action from audit.approvals order by recorded_at")
    assert audit == [("hold",), ("approve",), ("approve",)]
