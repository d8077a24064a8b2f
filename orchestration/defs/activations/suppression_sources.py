"""Where the suppression list comes from: warehouse tables, landed event files, manual entries.

The warehouse parts (responses, provider events, customers, the ledger's addresses) cannot
change while `deliveries` holds the warehouse, so they are read once per run. Landing files can:
the event endpoint lands unsubscribes at any time, and a do-not-contact file may be dropped in.
Those are re-read before every window of requests (files already read and unchanged are cached
by name, size and modification time).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from activations.suppressions import EVENT_COLUMNS, EVENT_REASONS, build_suppressions
from orchestration.landing import plan_table
from orchestration.warehouse_io import read

_EVENT_NAMES = ", ".join(f"'{e}'" for e in EVENT_REASONS)


def warehouse_events(con: duckdb.DuckDBPyConnection, before=None) -> pd.DataFrame:
    """Suppressing provider events already in the warehouse (optional tables may be missing)."""
    cutoff = "" if before is None else "and occurred_at < $d"
    params = {} if before is None else {"d": before}
    frames = []
    for table, source in (
        ("marts.fct_campaign_responses", "campaign_responses"),
        ("activations.provider_events", "provider_events"),
    ):
        frame = read(
            con,
            f"select message_id, customer_id, channel, event, occurred_at, '{source}' as source "
            f"from {table} where event in ({_EVENT_NAMES}) {cutoff}",
            params,
        )
        if frame is not None and not frame.empty:
            frames.append(frame)
    return _concat(frames, EVENT_COLUMNS)


def sent_addresses(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """message_key -> channel and address of every message the ledger or a review holds."""
    frames = [
        read(con, "select message_key, channel, address from activations.deliveries"),
        read(con, "select message_key, channel, address from activations.outbound_messages"),
    ]
    return _concat(
        [f for f in frames if f is not None and not f.empty],
        ["message_key", "channel", "address"],
    )


def customers_contacts(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """Current customer records: contact details and consent (opt-outs suppress addresses)."""
    return read(
        con,
        "select customer_id, email, phone, is_email_opt_in, is_sms_opt_in from marts.dim_customers",
    )


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    return pd.concat([f[columns] for f in frames], ignore_index=True)


def read_landing(landing_dir: Path, table: str, select: str, where: str = "true") -> pd.DataFrame:
    """``select`` over one landing table's files as landed (text), now; empty when it has none.

    The loader's own contract check and raw read (orchestration/landing.py), so a file the raw
    load would refuse is refused here too: the send stops rather than skip an unsubscribe.
    """
    con = duckdb.connect()
    try:
        _, sql = plan_table(con, Path(landing_dir), table)
        if sql is None:
            return pd.DataFrame()
        return con.execute(f"select {select} from ({sql}) where {where}").df()
    finally:
        con.close()


class SuppressionSources:
    """The current suppression list, for the build and for the check before each window."""

    def __init__(self, con: duckdb.DuckDBPyConnection, landing_dir: Path) -> None:
        self.events = warehouse_events(con)
        self.customers = customers_contacts(con)
        self.sent = sent_addresses(con)
        self.raw_manual = read(
            con,
            "select address, channel, reason, since, _source_file, _source_row "
            "from raw.suppressions",
        )
        self.landing_dir = Path(landing_dir)
        self.reads = 0

    def landed_events(self) -> pd.DataFrame:
        """Suppressing events in the landing files now (also those landed after the build)."""
        return read_landing(
            self.landing_dir,
            "campaign_responses",
            "message_id, customer_id, channel, event, occurred_at, "
            "'landing:' || _source_file as source",
            f"lower(trim(event)) in ({_EVENT_NAMES})",
        )

    def landed_manual(self) -> pd.DataFrame:
        return read_landing(
            self.landing_dir,
            "suppressions",
            "address, channel, reason, since, _source_file, _source_row",
        )

    def __call__(self) -> pd.DataFrame:
        self.reads += 1
        landed = self.landed_events()
        manual = self.landed_manual()
        frames = [f for f in (self.raw_manual, manual) if f is not None and not f.empty]
        return build_suppressions(
            _concat([f for f in (self.events, landed) if not f.empty], EVENT_COLUMNS),
            self.customers,
            pd.concat(frames, ignore_index=True) if frames else None,
            self.sent,
        )
