"""Approving a date from the review app: the approval core of the CLI and Dagster, plus a log.

The app writes the warehouse only here, and only when no run holds it: DuckDB's file lock
makes the write exclusive, so an approval can never interleave with a daily run's writes. A
busy warehouse refuses the approval with a message (nothing is recorded) instead of waiting.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import pandas as pd

from tessera.activations.approval import Approval, record_approval
from tessera.review.snapshot import WarehouseBusyError

#: The request header a sign-in proxy sets to the signed-in user.
USER_HEADER = "x-forwarded-user"
#: Who approves when no proxy names the user (one reviewer running the app locally).
USER_VAR = "TESSERA_REVIEW_USER"


class ApprovalRefused(ValueError):
    """An approval the app will not record (no reviewer named, bad date)."""


def reviewer(headers: Mapping[str, str], env: Mapping[str, str] | None = None) -> str:
    """The signed-in reviewer: the proxy's header first, else TESSERA_REVIEW_USER."""
    env = os.environ if env is None else env
    name = (headers.get(USER_HEADER) or env.get(USER_VAR) or "").strip()
    if not name:
        raise ApprovalRefused(
            f"nobody to record as the approver: sign in through a proxy that sets the "
            f"{USER_HEADER} header, or start the app with {USER_VAR}=<your name>"
        )
    return name


def same_origin(headers: Mapping[str, str]) -> bool:
    """Whether a form post comes from the app's own pages. Browsers name the page that posts
    in Origin (or Referer); another site's page posting to 127.0.0.1 must not approve sends."""
    host = headers.get("host", "")
    source = headers.get("origin") or headers.get("referer")
    if not source:
        return True  # not a browser's cross-site post (curl, tests): nothing to forge
    return urlsplit(source).netloc == host


@dataclass(frozen=True)
class Recorded:
    approval: Approval
    approved_by: str
    approved_at: dt.datetime


def approve_date(
    warehouse: Path,
    day: dt.date,
    approved_by: str,
    note: str = "",
    now: dt.datetime | None = None,
) -> Recorded:
    """Approve ``day``'s outbound messages as they are now (record_approval) and log it in
    review.approval_log. Raises WarehouseBusyError while another process writes the warehouse."""
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None)
    try:
        con = duckdb.connect(str(warehouse))
    except duckdb.IOException:
        raise WarehouseBusyError(
            f"a run is writing {warehouse}: nothing was approved; approve {day} again when the "
            "run has finished"
        ) from None
    try:
        approval = record_approval(con, day, approved_by, note, now=stamp)
        entry = pd.DataFrame(
            [
                {
                    "as_of_date": day,
                    "action": "approve",
                    "actor": approved_by,
                    "recorded_at": stamp,
                    "note": note,
                    "messages": approval.messages,
                    "fingerprint": approval.fingerprint,
                }
            ]
        )
        # the log keeps every approval of a date: append, never replace
        con.execute("create schema if not exists review")
        con.register("_entry", entry)
        try:
            con.execute(
                "create table if not exists review.approval_log as select * from _entry limit 0"
            )
            con.execute("insert into review.approval_log by name select * from _entry")
        finally:
            con.unregister("_entry")
    finally:
        con.close()
    return Recorded(approval, approved_by, stamp)
