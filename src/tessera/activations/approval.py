"""What an approval binds: every field of every message that would leave, and what changed since.

An approval records one row per approved message (its key and a digest of each field that
reaches the provider) plus a fingerprint over all of them. ``deliveries`` sends only when the
current outbound messages match the approved ones exactly; otherwise :func:`check_approval`
says what changed (e.g. "3 addresses, 1 template id changed since approval at ...").
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import duckdb
import pandas as pd
import pyarrow as pa

from tessera.activations.errors import ActivationError, SendBlockedError
from tessera.warehouse.duckdb_io import read, replace_dates

#: Fields of an outbound message that decide what leaves, in the order they are reported.
BOUND_FIELDS = ("address", "template_id", "personalization", "channel", "provider")

#: How each bound field is named in a refusal (singular, plural).
_FIELD_NAMES = {
    "address": ("address", "addresses"),
    "template_id": ("template id", "template ids"),
    "personalization": ("personalization", "personalizations"),
    "channel": ("channel", "channels"),
    "provider": ("provider", "providers"),
}

MANIFEST_COLUMNS = ["message_key", *BOUND_FIELDS]


def _digest(values: pd.Series) -> pd.Series:
    """A short stable digest per value (NULL and '' stay distinct)."""
    return values.map(
        lambda v: (
            "null"
            if v is None or (isinstance(v, float) and pd.isna(v))
            # 128 bits: a collision would need to be found on purpose, and it would change nothing
            # else in the request.
            else hashlib.sha256(str(v).encode("utf-8")).hexdigest()[:32]
        )
    )


def approval_manifest(messages: pd.DataFrame) -> pd.DataFrame:
    """One row per message: its key and a digest of each bound field (what an approval stores).

    Digests rather than values: the approval table need not hold a second copy of addresses and
    personal data, and equal digests mean equal values.
    """
    missing = [c for c in MANIFEST_COLUMNS if c not in messages.columns]
    if missing:
        raise SendBlockedError(
            f"outbound messages lack the column(s) {', '.join(missing)} an approval binds; "
            "rebuild outbound_messages"
        )
    out = pd.DataFrame({"message_key": messages["message_key"].astype(str).to_numpy()})
    for name in BOUND_FIELDS:
        out[name] = _digest(messages[name]).to_numpy()
    return out.sort_values("message_key", kind="stable").reset_index(drop=True)


def fingerprint(manifest: pd.DataFrame) -> str:
    """One hash over every approved message and bound field (order-independent)."""
    first, *rest = (manifest[c].astype(str) for c in MANIFEST_COLUMNS)
    # Column-wise, not a row-wise join (8 s at 54k messages): the same "a|b|c" per row.
    rows = first.str.cat(rest, sep="|") if rest else first
    return hashlib.sha256("\n".join(sorted(rows.tolist())).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ApprovalDiff:
    """How the current messages differ from the approved ones."""

    added: int = 0
    removed: int = 0
    changed: tuple[tuple[str, int], ...] = ()  # (field, messages whose field changed)

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def describe(self) -> str:
        parts = []
        for field, n in self.changed:
            one, many = _FIELD_NAMES[field]
            parts.append(f"{n} {one if n == 1 else many}")
        text = f"{', '.join(parts)} changed" if parts else ""
        extra = []
        if self.added:
            extra.append(f"{self.added} message{'s' if self.added != 1 else ''} added")
        if self.removed:
            extra.append(f"{self.removed} message{'s' if self.removed != 1 else ''} removed")
        return "; ".join([p for p in (text, ", ".join(extra)) if p])


def diff_manifests(approved: pd.DataFrame, current: pd.DataFrame) -> ApprovalDiff:
    """Count added and removed keys, and per bound field the kept keys whose value changed."""
    a = approved.set_index("message_key")
    c = current.set_index("message_key")
    kept = a.index.intersection(c.index)
    changed = []
    for name in BOUND_FIELDS:
        n = int((a.loc[kept, name].astype(str) != c.loc[kept, name].astype(str)).sum())
        if n:
            changed.append((name, n))
    return ApprovalDiff(
        added=len(c.index.difference(a.index)),
        removed=len(a.index.difference(c.index)),
        changed=tuple(changed),
    )


def check_approval(
    day: dt.date,
    messages: pd.DataFrame,
    approved: pd.DataFrame | None,
    approved_at: object = None,
    approved_by: str | None = None,
) -> None:
    """Raise SendBlockedError unless ``messages`` are exactly the approved ones.

    ``approved`` is the stored manifest of the approval (None: no approval, or one recorded
    before approvals bound the content, which must be renewed).
    """
    if approved is None or (approved.empty and not messages.empty):
        raise SendBlockedError(
            f"Awaiting approval for {day}: review outbound_messages, then materialize "
            "send_approval for this partition (or set auto_send). Nothing was sent."
        )
    current = approval_manifest(messages)
    diff = diff_manifests(approved, current)
    if diff.is_empty:
        return
    who = f" by {approved_by}" if approved_by else ""
    raise SendBlockedError(
        f"outbound_messages for {day} changed since approval at {approved_at}{who}: "
        f"{diff.describe()}. Nothing was sent; review outbound_messages and approve again."
    )


#: Every approval and hold of every date, by whom, when, through what and what it changed.
AUDIT_TABLE = "audit.approvals"
#: Dates on hold: nothing of theirs is sent (not even with auto_send) until approved again.
HOLDS_TABLE = "activations.send_holds"
APPROVALS_TABLE = "activations.send_approvals"
MANIFEST_TABLE = "activations.send_approval_messages"
#: What a reviewer can decide about a date.
ACTIONS = ("approve", "hold")

_APPROVALS_SCHEMA = pa.schema(
    [
        ("as_of_date", pa.date32()),
        ("approved_at", pa.timestamp("us")),
        ("approved_by", pa.string()),
        ("note", pa.string()),
        ("message_count", pa.int64()),
        ("fingerprint", pa.string()),
    ]
)
_MANIFEST_SCHEMA = pa.schema(
    [("as_of_date", pa.date32())] + [(c, pa.string()) for c in MANIFEST_COLUMNS]
)
_HOLDS_SCHEMA = pa.schema(
    [
        ("as_of_date", pa.date32()),
        ("held_at", pa.timestamp("us")),
        ("held_by", pa.string()),
        ("note", pa.string()),
    ]
)
_AUDIT_SCHEMA = pa.schema(
    [
        ("as_of_date", pa.date32()),
        ("action", pa.string()),
        ("actor", pa.string()),
        ("recorded_at", pa.timestamp("us")),
        ("note", pa.string()),
        ("messages", pa.int64()),
        ("fingerprint", pa.string()),
        ("changes", pa.string()),
        ("via", pa.string()),
        ("run_id", pa.string()),
    ]
)


@dataclass(frozen=True)
class Approval:
    """A recorded approval or hold: how many messages it covers, their fingerprint, and what
    changed since the date's previous approval ("" on a hold)."""

    messages: int
    fingerprint: str
    changes: str = ""
    action: str = "approve"


def _utc(now: dt.datetime | None) -> dt.datetime:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None)


def _table(schema: pa.Schema, rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


def changes_since_last_approval(
    con: duckdb.DuckDBPyConnection, day: dt.date, manifest: pd.DataFrame
) -> str:
    """How ``manifest`` differs from the date's stored approval, in words."""
    try:
        previous, row = stored_approval(con, day)
    except ActivationError:
        return "the previous approval bound no message content; nothing to compare"
    if row is None:
        return "first approval of the date"
    diff = diff_manifests(previous, manifest[MANIFEST_COLUMNS])
    return (
        f"no change since the approval at {row['approved_at']} by {row['approved_by']}"
        if diff.is_empty
        else f"since the approval at {row['approved_at']} by {row['approved_by']}: "
        f"{diff.describe()}"
    )


def _current_messages(con: duckdb.DuckDBPyConnection, day: dt.date) -> pd.DataFrame:
    messages = read(
        con, "select * from activations.outbound_messages where as_of_date = $d", {"d": day}
    )
    if messages is None:
        raise SendBlockedError(
            f"no outbound messages to approve for {day}: materialize outbound_messages first"
        )
    return messages


def record_approval(
    con: duckdb.DuckDBPyConnection,
    day: dt.date,
    approved_by: str,
    note: str = "",
    now: dt.datetime | None = None,
    *,
    expected_fingerprint: str = "",
    via: str = "cli",
    run_id: str = "",
) -> Approval:
    """Approve ``day``'s stored outbound messages as they are now (replacing an earlier
    approval of the day and releasing a hold): one row in activations.send_approvals, the bound
    fields of every message in activations.send_approval_messages, and an entry in
    audit.approvals, in one transaction.

    ``expected_fingerprint`` is the fingerprint of the messages the reviewer saw: when given and
    the messages are no longer those, nothing is recorded (SendBlockedError), so an approval
    never binds messages nobody reviewed.
    """
    if not approved_by.strip():
        raise SendBlockedError(f"an approval of {day} needs the name of who approves")
    manifest = approval_manifest(_current_messages(con, day))
    digest = fingerprint(manifest)
    if expected_fingerprint and expected_fingerprint != digest:
        raise SendBlockedError(
            f"the outbound messages of {day} are not the ones reviewed (fingerprint "
            f"{expected_fingerprint} was shown, they are now {digest}): a run rebuilt them. "
            "Nothing was approved; review the date again."
        )
    changes = changes_since_last_approval(con, day, manifest)
    manifest.insert(0, "as_of_date", day)
    stamp = _utc(now)
    row = {
        "as_of_date": day,
        "approved_at": stamp,
        "approved_by": approved_by,
        "note": note,
        "message_count": len(manifest),
        "fingerprint": digest,
    }
    audit = {
        "as_of_date": day,
        "action": "approve",
        "actor": approved_by,
        "recorded_at": stamp,
        "note": note,
        "messages": len(manifest),
        "fingerprint": digest,
        "changes": changes,
        "via": via,
        "run_id": run_id,
    }
    replace_dates(
        con,
        [
            (APPROVALS_TABLE, _table(_APPROVALS_SCHEMA, [row])),
            (MANIFEST_TABLE, pa.Table.from_pandas(manifest, schema=_MANIFEST_SCHEMA,
                                                  preserve_index=False)),
            (HOLDS_TABLE, _table(_HOLDS_SCHEMA, [])),
        ],
        day,
        appends=[(AUDIT_TABLE, _table(_AUDIT_SCHEMA, [audit]))],
    )  # fmt: skip
    return Approval(messages=len(manifest), fingerprint=digest, changes=changes)


def record_hold(
    con: duckdb.DuckDBPyConnection,
    day: dt.date,
    held_by: str,
    note: str = "",
    now: dt.datetime | None = None,
    *,
    via: str = "cli",
    run_id: str = "",
) -> Approval:
    """Put ``day`` on hold: its approval is withdrawn and ``deliveries`` sends nothing of it, not
    even with auto_send, until the date is approved again. Messages already sent stay sent.
    Recorded in activations.send_holds and audit.approvals, in one transaction."""
    if not held_by.strip():
        raise SendBlockedError(f"a hold of {day} needs the name of who holds it")
    messages = read(
        con, "select * from activations.outbound_messages where as_of_date = $d", {"d": day}
    )
    count = 0 if messages is None else len(messages)
    digest = "" if messages is None else fingerprint(approval_manifest(messages))
    stamp = _utc(now)
    hold = {"as_of_date": day, "held_at": stamp, "held_by": held_by, "note": note}
    audit = {
        "as_of_date": day,
        "action": "hold",
        "actor": held_by,
        "recorded_at": stamp,
        "note": note,
        "messages": count,
        "fingerprint": digest,
        "changes": "",
        "via": via,
        "run_id": run_id,
    }
    replace_dates(
        con,
        [
            (APPROVALS_TABLE, _table(_APPROVALS_SCHEMA, [])),
            (MANIFEST_TABLE, _table(_MANIFEST_SCHEMA, [])),
            (HOLDS_TABLE, _table(_HOLDS_SCHEMA, [hold])),
        ],
        day,
        appends=[(AUDIT_TABLE, _table(_AUDIT_SCHEMA, [audit]))],
    )
    return Approval(messages=count, fingerprint=digest, action="hold")


def stored_hold(con: duckdb.DuckDBPyConnection, day: dt.date) -> pd.Series | None:
    """The date's hold (held_at, held_by, note), or None."""
    holds = read(con, f"select * from {HOLDS_TABLE} where as_of_date = $d", {"d": day})
    if holds is None or holds.empty:
        return None
    return holds.iloc[0]


def require_not_held(con: duckdb.DuckDBPyConnection, day: dt.date) -> None:
    """Raise SendBlockedError when ``day`` is on hold (checked before auto_send too)."""
    hold = stored_hold(con, day)
    if hold is None:
        return
    why = f": {hold['note']}" if hold.get("note") else ""
    raise SendBlockedError(
        f"{day} is on hold, held by {hold['held_by']} at {hold['held_at']} UTC{why}. "
        "Nothing was sent; approve the date again to release it."
    )


def stored_approval(
    con: duckdb.DuckDBPyConnection, day: dt.date
) -> tuple[pd.DataFrame | None, pd.Series | None]:
    """The stored approval of ``day``: the messages it binds and its row (None: none)."""
    approval = read(con, f"select * from {APPROVALS_TABLE} where as_of_date = $d", {"d": day})
    if approval is None or approval.empty:
        return None, None
    row = approval.iloc[0]
    manifest = read(
        con,
        f"select {', '.join(MANIFEST_COLUMNS)} from {MANIFEST_TABLE} where as_of_date = $d",
        {"d": day},
    )
    if manifest is None and int(row["message_count"]) == 0:
        manifest = pd.DataFrame(columns=MANIFEST_COLUMNS)
    if manifest is None or len(manifest) != int(row["message_count"]):
        raise ActivationError(
            f"the approval of {day} at {row['approved_at']} was recorded before approvals bound "
            "each message's content; review outbound_messages and approve again"
        )
    return manifest, row


def require_approval(con: duckdb.DuckDBPyConnection, day: dt.date, messages: pd.DataFrame) -> None:
    """Raise (SendBlockedError or ActivationError) unless ``messages`` are the approved ones."""
    approved, row = stored_approval(con, day)
    check_approval(
        day,
        messages,
        approved,
        approved_at=None if row is None else row["approved_at"],
        approved_by=None if row is None else row["approved_by"],
    )
