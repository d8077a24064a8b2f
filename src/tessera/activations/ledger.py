"""The delivery ledger in DuckDB: each key recorded before its request, its outcome after."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import duckdb
import pandas as pd

SCHEMA = "activations"

#: Status life cycle: pending -> sending -> sent | failed | unknown, or pending -> suppressed
#: when the send-time check finds the address suppressed (final: never sent). 'sending' rows
#: found at start-up were in flight when a process died; they are reconciled before anything
#: is sent.
STATUSES = ("pending", "sending", "sent", "failed", "unknown", "suppressed")

#: Statuses that count as "left or may have left" for daily ceilings and per-address limits.
OUT_STATUSES = ("sent", "sending", "unknown")


class DuplicateMessageError(ValueError):
    """Two outbound rows share a message key but differ in what they would send."""


DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {SCHEMA}.deliveries (
    message_key varchar not null,
    as_of_date date not null,
    campaign_id varchar,
    customer_id varchar,
    channel varchar,
    provider varchar,
    status varchar not null,
    attempts integer not null default 0,
    batch_id varchar,
    provider_message_id varchar,
    response_code integer,
    response_excerpt varchar,
    error varchar,
    is_retryable boolean,
    created_at timestamp,
    first_attempt_at timestamp,
    last_attempt_at timestamp,
    sent_at timestamp
);
alter table {SCHEMA}.deliveries add column if not exists address varchar;
-- One row per key, enforced by the ledger itself (also on ledgers created before the index).
create unique index if not exists deliveries_message_key on {SCHEMA}.deliveries (message_key);
create table if not exists {SCHEMA}.delivery_attempts (
    batch_id varchar,
    attempt integer,
    provider varchar,
    as_of_date date,
    message_count integer,
    started_at timestamp,
    finished_at timestamp,
    outcome varchar,
    response_code integer,
    response_excerpt varchar,
    retry_after_s double
);
"""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)


def unique_messages(messages: pd.DataFrame) -> pd.DataFrame:
    """``messages`` with one row per message key.

    Identical repeated rows collapse to one; rows that share a key but differ (another address,
    template or personalization) raise :class:`DuplicateMessageError`, since either could be the
    one that was reviewed.
    """
    dup = messages["message_key"].duplicated(keep=False)
    if not dup.any():
        return messages
    rows = messages[dup].astype(str).drop_duplicates()
    conflicting = rows["message_key"][rows["message_key"].duplicated()].unique()
    if len(conflicting):
        raise DuplicateMessageError(
            f"{len(conflicting)} message key(s) appear in several different outbound rows "
            f"(e.g. {conflicting[0]}); rebuild outbound_messages so each key is one message"
        )
    return messages.drop_duplicates("message_key", keep="first")


def register(con: duckdb.DuckDBPyConnection, messages: pd.DataFrame) -> int:
    """Insert keys not yet in the ledger as 'pending'; returns how many were new.

    A key repeated in ``messages`` is registered once (the unique index would refuse a second).
    """
    cols = ["message_key", "as_of_date", "campaign_id", "customer_id", "channel", "provider"]
    frame = unique_messages(messages)
    frame = frame[cols + (["address"] if "address" in frame.columns else [])]
    if "address" not in frame.columns:
        frame = frame.assign(address=None)
    con.register("_new_msgs", frame)
    try:
        n = con.execute(
            f"""
            insert into {SCHEMA}.deliveries
                (message_key, as_of_date, campaign_id, customer_id, channel, provider, status,
                 attempts, created_at, address)
            select m.message_key, cast(m.as_of_date as date), m.campaign_id, m.customer_id,
                   m.channel, m.provider, 'pending', 0, $now, cast(m.address as varchar)
            from _new_msgs m
            where not exists (select 1 from {SCHEMA}.deliveries d where d.message_key = m.message_key)
            """,
            {"now": _now()},
        ).fetchall()[0][0]
    finally:
        con.unregister("_new_msgs")
    return int(n)


def statuses(con: duckdb.DuckDBPyConnection, keys: Iterable[str]) -> pd.DataFrame:
    """Ledger rows for the given keys."""
    con.register("_keys", pd.DataFrame({"message_key": list(keys)}, dtype="object"))
    try:
        return con.execute(
            f"select d.* from {SCHEMA}.deliveries d join _keys k using (message_key)"
        ).df()
    finally:
        con.unregister("_keys")


def mark_sending(con: duckdb.DuckDBPyConnection, assignments: pd.DataFrame) -> None:
    """Record (message_key, batch_id) as in flight, committed before any request leaves."""
    con.register("_sending", assignments[["message_key", "batch_id"]])
    try:
        now = _now()
        con.execute(
            f"""
            update {SCHEMA}.deliveries d
            set status = 'sending', batch_id = s.batch_id, attempts = d.attempts + 1,
                first_attempt_at = coalesce(d.first_attempt_at, $now), last_attempt_at = $now
            from _sending s where d.message_key = s.message_key
            """,
            {"now": now},
        )
    finally:
        con.unregister("_sending")


def record_outcomes(con: duckdb.DuckDBPyConnection, outcomes: pd.DataFrame) -> None:
    """Write outcomes: columns message_key, status, provider_message_id, response_code,
    response_excerpt, error, is_retryable, attempts_delta (extra attempts made by retries)."""
    if outcomes.empty:
        return
    con.register("_out", outcomes)
    try:
        con.execute(
            f"""
            update {SCHEMA}.deliveries d
            set status = o.status,
                provider_message_id = coalesce(o.provider_message_id, d.provider_message_id),
                response_code = o.response_code,
                response_excerpt = o.response_excerpt,
                error = o.error,
                is_retryable = o.is_retryable,
                attempts = d.attempts + coalesce(o.attempts_delta, 0),
                sent_at = case when o.status = 'sent' then coalesce(d.sent_at, $now) else d.sent_at end
            from _out o where d.message_key = o.message_key
            """,
            {"now": _now()},
        )
    finally:
        con.unregister("_out")


def record_attempts(con: duckdb.DuckDBPyConnection, attempts: list[dict]) -> None:
    """Append one row per HTTP attempt (kept: vendor logs expire, ours do not)."""
    if not attempts:
        return
    frame = pd.DataFrame(
        attempts,
        columns=[
            "batch_id",
            "attempt",
            "provider",
            "as_of_date",
            "message_count",
            "started_at",
            "finished_at",
            "outcome",
            "response_code",
            "response_excerpt",
            "retry_after_s",
        ],
    )
    con.register("_att", frame)
    try:
        con.execute(f"insert into {SCHEMA}.delivery_attempts select * from _att")
    finally:
        con.unregister("_att")


def partition_summary(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> pd.DataFrame:
    """Counts per channel and status for one date."""
    return con.execute(
        f"""
        select channel, status, count(*) as messages from {SCHEMA}.deliveries
        where as_of_date = $d group by all order by channel, status
        """,
        {"d": as_of},
    ).df()
