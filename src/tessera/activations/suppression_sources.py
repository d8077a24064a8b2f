"""Where the suppression list comes from: warehouse tables, landed event files, manual entries.

The warehouse parts (raw and staged responses, provider events, customers) cannot change while
`deliveries` holds the warehouse, so they are read once per run. Landing files can: the event
endpoint lands unsubscribes at any time, and a do-not-contact file may be dropped in. Before
every window of requests the landing folders are listed again and every event file the
warehouse does not hold yet (by name: `raw.campaign_responses._source_file`,
`activations.provider_events.source_file`) is read, as is every manual entry file. A file
changed in place after it was loaded is read again at the next raw load.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import duckdb
import pandas as pd

from tessera.activations.suppressions import (
    EVENT_COLUMNS,
    SUPPRESSING_EVENTS,
    build_suppressions,
    event_sql,
)
from tessera.warehouse.duckdb_io import read
from tessera.warehouse.landing import landing_files, plan_table

_EVENT_NAMES = ", ".join(f"'{e}'" for e in SUPPRESSING_EVENTS)


def warehouse_events(con: duckdb.DuckDBPyConnection, before=None) -> pd.DataFrame:
    """Suppressing provider events already in the warehouse (optional tables may be missing)."""
    cutoff = "" if before is None else "and occurred_at < $d"
    params = {} if before is None else {"d": before}
    frames = []
    # raw as well as staged: a row staging holds back (say, for an unknown customer) may still
    # be somebody's unsubscribe.
    raw_cutoff = "" if before is None else "and try_cast(occurred_at as timestamp) < $d"
    for table, source, where in (
        ("raw.campaign_responses", "'raw:' || _source_file", raw_cutoff),
        ("marts.fct_campaign_responses", "'campaign_responses'", cutoff),
        ("activations.provider_events", "'provider_events'", cutoff),
    ):
        frame = read(
            con,
            f"select message_id, customer_id, channel, event, occurred_at, {source} as source "
            f"from {table} where {event_sql('event')} in ({_EVENT_NAMES}) {where}",
            params,
        )
        if frame is not None and not frame.empty:
            frames.append(frame)
    return _concat(frames, EVENT_COLUMNS)


def sent_addresses(con: duckdb.DuckDBPyConnection, keys: pd.Series) -> pd.DataFrame:
    """message_key -> channel and address, for ``keys``, from the ledger and the reviews."""
    ids = pd.DataFrame({"message_key": pd.Series(keys, dtype="object").dropna().unique()})
    if ids.empty:
        return _concat([], ["message_key", "channel", "address"])
    con.register("_event_keys", ids)
    try:
        frames = [
            read(
                con,
                f"select t.message_key, t.channel, t.address from {table} t "
                "join _event_keys k using (message_key)",
            )
            for table in ("activations.deliveries", "activations.outbound_messages")
        ]
    finally:
        con.unregister("_event_keys")
    return _concat(
        [f for f in frames if f is not None and not f.empty],
        ["message_key", "channel", "address"],
    )


CONTACT_COLUMNS = ["customer_id", "email", "phone", "is_email_opt_in", "is_sms_opt_in"]


def customers_contacts(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """Customer records: contact details and consent (an opt-out suppresses its address).

    The current customers (marts.dim_customers) and every staged record
    (staging.stg_shop__customers, which may keep earlier or later versions of a customer): a
    record that withdrew consent suppresses its address for everybody who has it.
    """
    frames = [
        read(con, f"select {', '.join(CONTACT_COLUMNS)} from {table}")
        for table in ("marts.dim_customers", "staging.stg_shop__customers")
    ]
    frames = [f for f in frames if f is not None]
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True).drop_duplicates().reset_index(drop=True)


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    return pd.concat([f[columns] for f in frames], ignore_index=True)


def read_landing(
    landing_dir: Path,
    table: str,
    select: str,
    where: str = "true",
    skip: frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """``select`` over one landing table's files as landed (text), now; empty when it has none.

    Files whose name or landing-relative path is in ``skip`` are not read. The loader's own
    contract check and raw read (tessera.warehouse.landing) do the reading, so a file the raw
    load would refuse is refused here too: the send stops rather than skip an unsubscribe.
    """
    landing_dir = Path(landing_dir)
    files = [
        p
        for p in landing_files(landing_dir, table)
        if p.name not in skip and str(p.relative_to(landing_dir)) not in skip
    ]
    if not files:
        return pd.DataFrame()
    con = duckdb.connect()
    try:
        with tempfile.TemporaryDirectory(prefix="tessera-suppressions-") as tmp:
            # Only the files to read, under the same relative names (so _source_file matches).
            view = Path(tmp)
            for path in files:
                target = view / path.relative_to(landing_dir)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(path, target)
            _, sql = plan_table(con, view, table)
            if sql is None:
                return pd.DataFrame()
            return con.execute(f"select {select} from ({sql}) where {where}").df()
    finally:
        con.close()


class SuppressionSources:
    """The current suppression list, for the build and for the check before each window."""

    def __init__(self, con: duckdb.DuckDBPyConnection, landing_dir: Path) -> None:
        self._con = con
        self.events = warehouse_events(con)
        self.customers = customers_contacts(con)
        self.known_files = _loaded_files(con)
        self.raw_manual = read(
            con,
            "select address, channel, reason, since, _source_file, _source_row "
            "from raw.suppressions",
        )
        self.landing_dir = Path(landing_dir)
        self.reads = 0
        # What the warehouse holds cannot change during the run: normalise it once.
        self._static = build_suppressions(
            self.events,
            self.customers,
            self.raw_manual,
            sent_addresses(con, self.events["message_id"]),
        )

    def landed_events(self) -> pd.DataFrame:
        """Suppressing events in the landing files now (also those landed after the build)."""
        return read_landing(
            self.landing_dir,
            "campaign_responses",
            "message_id, customer_id, channel, event, occurred_at, "
            "'landing:' || _source_file as source",
            f"{event_sql('event')} in ({_EVENT_NAMES})",
            skip=self.known_files,
        )

    def landed_manual(self) -> pd.DataFrame:
        return read_landing(
            self.landing_dir,
            "suppressions",
            "address, channel, reason, since, _source_file, _source_row",
        )

    def __call__(self) -> pd.DataFrame:
        """The warehouse's list plus what the landing folders hold now."""
        self.reads += 1
        landed = self.landed_events()
        landed = _concat([landed] if not landed.empty else [], EVENT_COLUMNS)
        manual = self.landed_manual()
        if landed.empty and manual.empty:
            return self._static
        customers = self.customers
        if customers is not None:
            # Only the landed events' customers are needed (to find their addresses).
            customers = customers[customers["customer_id"].isin(set(landed["customer_id"]))]
        fresh = build_suppressions(
            landed,
            customers,
            manual if not manual.empty else None,
            sent_addresses(self._con, landed["message_id"]),
        )
        return (
            pd.concat([self._static, fresh], ignore_index=True)
            .drop_duplicates()
            .reset_index(drop=True)
        )


def _loaded_files(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Landing files of campaign_responses whose rows the warehouse already holds."""
    names: set[str] = set()
    for sql in (
        "select distinct _source_file from raw.campaign_responses",
        "select distinct source_file from activations.provider_events",
    ):
        frame = read(con, sql)
        if frame is not None and not frame.empty:
            names |= {str(v) for v in frame.iloc[:, 0].dropna()}
    return frozenset(names)
