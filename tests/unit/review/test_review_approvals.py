"""Approving and holding from the app: the approval core's tables, an audit of every decision,
no race with a run, and Dagster as the default way a decision is made."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from review_data import HOLD, D

from tessera.activations.approval import require_approval, require_not_held
from tessera.activations.errors import SendBlockedError
from tessera.review.approvals import (
    ApprovalRefused,
    DagsterDecisions,
    Decision,
    DirectDecisions,
    same_origin,
)
from tessera.review.snapshot import WarehouseBusyError


def _decide(warehouse: Path, action: str, who: str, note: str = "", fingerprint: str = ""):
    return DirectDecisions(warehouse).decide(Decision(D, action, who, note, fingerprint))


def test_an_app_approval_is_the_one_deliveries_checks(warehouse: Path) -> None:
    outcome = _decide(warehouse, "approve", "anna", "looks right")
    assert outcome.summary == "approved 4 messages as anna" and not outcome.run_id
    with duckdb.connect(str(warehouse), read_only=True) as con:
        messages = con.execute("select * from activations.outbound_messages").df()
        require_approval(con, D, messages)  # raises unless the approval binds these messages
        row = con.execute(
            "select approved_by, note, message_count from activations.send_approvals"
        ).fetchall()
    assert row == [("anna", "looks right", 4)]


def test_every_decision_of_a_date_stays_in_the_audit_with_what_changed(warehouse: Path) -> None:
    _decide(warehouse, "approve", "anna")
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update activations.outbound_messages set address = 'new@x.example' "
            "where message_key = 'k010'"
        )
    _decide(warehouse, "approve", "ben", "again")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        audit = con.execute(
            "select actor, action, messages, via, changes from audit.approvals order by recorded_at"
        ).fetchall()
        approvals = con.execute("select approved_by from activations.send_approvals").fetchall()
    assert [a[:4] for a in audit] == [
        ("anna", "approve", 4, "review-app"),
        ("ben", "approve", 4, "review-app"),
    ]
    assert audit[0][4] == "first approval of the date"
    assert audit[1][4].endswith("by anna: 1 address changed")
    assert approvals == [("ben",)]


def test_a_hold_withdraws_the_approval_and_stops_even_unattended_sends(warehouse: Path) -> None:
    _decide(warehouse, "approve", "anna")
    _decide(warehouse, "hold", "ben", "wrong offer in the deals mail")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        messages = con.execute("select * from activations.outbound_messages").df()
        with pytest.raises(SendBlockedError, match="held by ben .*wrong offer"):
            require_not_held(con, D)  # deliveries checks this before auto_send too
        with pytest.raises(SendBlockedError, match="Awaiting approval"):
            require_approval(con, D, messages)
    _decide(warehouse, "approve", "anna", "fixed")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        require_not_held(con, D)  # an approval releases the hold
        require_approval(con, D, messages)
        actions = con.execute("select action from audit.approvals order by recorded_at").fetchall()
    assert actions == [("approve",), ("hold",), ("approve",)]


def test_an_approval_of_messages_nobody_reviewed_records_nothing(warehouse: Path) -> None:
    with pytest.raises(ApprovalRefused, match="not the ones reviewed"):
        _decide(warehouse, "approve", "anna", fingerprint="0" * 32)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {t for (t,) in con.execute("select table_name from duckdb_tables()").fetchall()}
    assert "send_approvals" not in tables and "approvals" not in tables


def test_an_unknown_action_is_refused() -> None:
    with pytest.raises(ApprovalRefused, match="unknown action 'send'"):
        Decision(D, "send", "anna")


def test_a_decision_while_a_run_writes_is_refused_and_records_nothing(warehouse: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "locked"
        with pytest.raises(WarehouseBusyError, match="nothing was approved or held"):
            _decide(warehouse, "approve", "anna")
    finally:
        writer.communicate("\n", timeout=30)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {t for (t,) in con.execute("select table_name from duckdb_tables()").fetchall()}
    assert "send_approvals" not in tables and "approvals" not in tables


def test_a_decision_when_dagster_does_not_answer_says_so_and_records_nothing(
    warehouse: Path,
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    decisions = DagsterDecisions(f"http://127.0.0.1:{port}", timeout=5)
    with pytest.raises(ApprovalRefused, match="nothing was recorded.*--approve-directly"):
        decisions.decide(Decision(D, "approve", "anna"))
    assert decisions.run_status("abc").startswith("unknown")


def test_the_dagster_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="not an http"):
        DagsterDecisions("127.0.0.1:3000")


def test_only_the_apps_own_pages_may_post_a_decision() -> None:
    host = {"host": "127.0.0.1:8730"}
    assert same_origin({**host, "origin": "http://127.0.0.1:8730"})
    assert same_origin({**host, "referer": "http://127.0.0.1:8730/date/2026-06-01"})
    assert same_origin(host)  # no browser page named: curl or a script
    assert not same_origin({**host, "origin": "https://evil.example"})
    assert not same_origin({**host, "referer": "http://127.0.0.1:9999/"})
