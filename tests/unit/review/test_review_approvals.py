"""Approving from the app: the approval core's tables, a log of every approval, and no race."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from review_data import HOLD, D

from tessera.activations.approval import require_approval
from tessera.review.approvals import ApprovalRefused, approve_date, reviewer, same_origin
from tessera.review.snapshot import WarehouseBusyError


def test_the_sign_in_proxy_header_names_the_reviewer_before_the_environment() -> None:
    env = {"TESSERA_REVIEW_USER": "local"}
    assert reviewer({"x-forwarded-user": "anna"}, env) == "anna"
    assert reviewer({}, env) == "local"


def test_an_approval_without_a_reviewer_is_refused() -> None:
    with pytest.raises(ApprovalRefused, match="TESSERA_REVIEW_USER"):
        reviewer({}, {})


def test_an_app_approval_is_the_one_deliveries_checks(warehouse: Path) -> None:
    recorded = approve_date(warehouse, D, "anna", "looks right")
    assert recorded.approval.messages == 4
    with duckdb.connect(str(warehouse), read_only=True) as con:
        messages = con.execute("select * from activations.outbound_messages").df()
        require_approval(con, D, messages)  # raises unless the approval binds these messages
        row = con.execute(
            "select approved_by, note, message_count from activations.send_approvals"
        ).fetchall()
    assert row == [("anna", "looks right", 4)]


def test_every_approval_of_a_date_stays_in_the_log(warehouse: Path) -> None:
    approve_date(warehouse, D, "anna")
    approve_date(warehouse, D, "ben", "again")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        log = con.execute(
            "select actor, action, messages from review.approval_log order by recorded_at"
        ).fetchall()
        approvals = con.execute("select approved_by from activations.send_approvals").fetchall()
    assert log == [("anna", "approve", 4), ("ben", "approve", 4)]
    assert approvals == [("ben",)]


def test_an_approval_while_a_run_writes_is_refused_and_records_nothing(warehouse: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "locked"
        with pytest.raises(WarehouseBusyError, match="nothing was approved"):
            approve_date(warehouse, D, "anna")
    finally:
        writer.communicate("\n", timeout=30)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {t for (t,) in con.execute("select table_name from duckdb_tables()").fetchall()}
    assert "send_approvals" not in tables and "approval_log" not in tables


def test_only_the_apps_own_pages_may_post_an_approval() -> None:
    host = {"host": "127.0.0.1:8730"}
    assert same_origin({**host, "origin": "http://127.0.0.1:8730"})
    assert same_origin({**host, "referer": "http://127.0.0.1:8730/date/2026-06-01"})
    assert same_origin(host)  # no browser page named: curl or a script
    assert not same_origin({**host, "origin": "https://evil.example"})
    assert not same_origin({**host, "referer": "http://127.0.0.1:9999/"})
