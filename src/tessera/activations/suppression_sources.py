"""Where the suppression list comes from: a fixed set of sources, each required or optional.

:data:`SOURCES` names every input. The one required table is ``marts.dim_customers`` (every
customer's consent and addresses): without it the list cannot say who opted out, so a missing
one is a :class:`MissingSuppressionSourceError` naming it. The others are optional inputs that
a shop or a warehouse may not have (yet); each says what its absence means.

Provider events come through the one store (``tessera.activations.event_store``): what the raw
load read, then the files landed since, listed again before every window of requests, so an
unsubscribe the endpoint lands at any time counts. Manual entries (a do-not-contact file) are
read from the raw load and from the landing folder as it is now. The warehouse parts cannot
change while ``deliveries`` holds the warehouse, so they are read once per run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from tessera.activations.errors import ActivationError
from tessera.activations.event_store import ProviderEvents, read_landing
from tessera.activations.suppressions import (
    EVENT_COLUMNS,
    SUPPRESSING_EVENTS,
    build_suppressions,
)
from tessera.warehouse.duckdb_io import read

log = logging.getLogger(__name__)


class MissingSuppressionSourceError(ActivationError):
    """A required input of the suppression list does not exist."""


@dataclass(frozen=True)
class Source:
    """One input of the suppression list."""

    name: str
    required: bool
    #: What it contributes, and (for an optional one) what its absence means.
    role: str


SOURCES = (
    Source(
        "marts.dim_customers",
        True,
        "current customer records: a withdrawn consent suppresses the address for everybody",
    ),
    Source(
        "staging.stg_shop__customers",
        False,
        "every staged customer record (earlier and later versions); absent: only current ones",
    ),
    Source(
        "raw.campaign_responses",
        False,
        "the raw load's copy of the provider event store, also rows staging holds back; "
        "absent before the first raw load: every landed file is read from the folder",
    ),
    Source(
        "landing/campaign_responses",
        False,
        "provider event files landed since the raw load (the event endpoint's); none: nothing new",
    ),
    Source(
        "raw.suppressions",
        False,
        "the raw load's copy of the do-not-contact list; absent: none was loaded",
    ),
    Source(
        "landing/suppressions",
        False,
        "do-not-contact files as they are now (dropped in after the load count); none: none",
    ),
    Source(
        "activations.deliveries",
        False,
        "the ledger: the address each event's message went to; absent before the first send",
    ),
    Source(
        "activations.outbound_messages",
        False,
        "the reviews: addresses of messages not in the ledger; absent before the first review",
    ),
)
REQUIRED_TABLES = tuple(s.name for s in SOURCES if s.required)
_LEDGER_TABLES = ("activations.deliveries", "activations.outbound_messages")
CONTACT_COLUMNS = ["customer_id", "email", "phone", "is_email_opt_in", "is_sms_opt_in"]
MANUAL_SELECT = "address, channel, reason, since, _source_file, _source_row"
#: The order build_suppressions returns its rows in.
_ORDER = ["channel", "match_key", "reason", "source", "source_event"]


def existing_tables(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Every `schema.table` (tables and views) of the warehouse."""
    rows = con.execute(
        "select schema_name, table_name from duckdb_tables() "
        "union all select schema_name, view_name from duckdb_views()"
    ).fetchall()
    return frozenset(f"{schema}.{name}" for schema, name in rows)


def require_sources(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """The warehouse's tables; raise naming every required source that is missing."""
    tables = existing_tables(con)
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise MissingSuppressionSourceError(
            f"the suppression list reads {', '.join(missing)}, which does not exist: build the "
            "warehouse (dbt) first. Nothing is reviewed or sent without it."
        )
    return tables


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if f is not None and not f.empty]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    return pd.concat([f[columns] for f in frames], ignore_index=True)


def sent_addresses(con: duckdb.DuckDBPyConnection, keys: pd.Series) -> pd.DataFrame:
    """message_key -> channel and address, for ``keys``, from the ledger and the reviews."""
    ids = pd.DataFrame({"message_key": pd.Series(keys, dtype="object").dropna().unique()})
    columns = ["message_key", "channel", "address"]
    tables = [t for t in _LEDGER_TABLES if t in existing_tables(con)]
    if ids.empty or not tables:
        return _concat([], columns)
    con.register("_event_keys", ids)
    try:
        frames = [
            con.execute(
                f"select t.message_key, t.channel, t.address from {table} t "
                "join _event_keys k using (message_key)"
            ).df()
            for table in tables
        ]
    finally:
        con.unregister("_event_keys")
    return _concat(frames, columns)


def customers_contacts(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Customer records: contact details and consent (an opt-out suppresses its address).

    The current customers (marts.dim_customers, required) and every staged record
    (staging.stg_shop__customers, optional, which may keep earlier or later versions of a
    customer): a record that withdrew consent suppresses its address for everybody who has it.
    """
    tables = require_sources(con)
    frames = [
        con.execute(f"select {', '.join(CONTACT_COLUMNS)} from {table}").df()
        for table in ("marts.dim_customers", "staging.stg_shop__customers")
        if table in tables
    ]
    return pd.concat(frames, ignore_index=True).drop_duplicates().reset_index(drop=True)


def _events(frame: pd.DataFrame) -> pd.DataFrame:
    return _concat([frame], EVENT_COLUMNS)


class SuppressionSources:
    """The current suppression list, for the build and for the check before each window."""

    def __init__(self, con: duckdb.DuckDBPyConnection, landing_dir: Path) -> None:
        self._con = con
        tables = require_sources(con)
        self.customers = customers_contacts(con)
        self.store = ProviderEvents(con, landing_dir)
        self.events = _events(self.store.loaded(SUPPRESSING_EVENTS))
        self.known_files = self.store.known_files
        self.raw_manual = (
            read(con, f"select {MANUAL_SELECT} from raw.suppressions")
            if "raw.suppressions" in tables
            else None
        )
        self.landing_dir = Path(landing_dir)
        #: Optional sources this warehouse does not have (see SOURCES for what that means).
        self.absent = tuple(
            s.name for s in SOURCES if "." in s.name and not s.required and s.name not in tables
        )
        if self.absent:
            log.info(
                "optional suppression sources not in the warehouse: %s", ", ".join(self.absent)
            )
        self.reads = 0
        #: Landed event files built together (file -> its frame as the store holds it), and
        #: their suppressions.
        self._built: list[tuple[dict[str, pd.DataFrame], pd.DataFrame]] = []
        # What the warehouse holds cannot change during the run: normalise it once.
        self._static = build_suppressions(
            self.events,
            self.customers,
            self.raw_manual,
            sent_addresses(con, self.events["message_id"]),
        )

    def landed_events(self) -> pd.DataFrame:
        """Suppressing events in the files landed since the raw load (read now)."""
        landed = self.store.landed(SUPPRESSING_EVENTS)
        return _events(landed) if not landed.empty else pd.DataFrame()

    def landed_manual(self) -> pd.DataFrame:
        return read_landing(self.landing_dir, "suppressions", MANUAL_SELECT)

    def _build_landed(self, landed: pd.DataFrame) -> pd.DataFrame:
        events = _events(landed)
        # Only the landed events' customers are needed (to find their addresses).
        customers = self.customers[self.customers["customer_id"].isin(set(events["customer_id"]))]
        return build_suppressions(
            events, customers, None, sent_addresses(self._con, events["message_id"])
        )

    def _landed_parts(self) -> list[pd.DataFrame]:
        """The suppressions of the landed event files (built once, for the files new since the
        last call together) and of the manual files as they are now: the check before every
        window costs only what is new."""
        files = self.store.landed_by_file(SUPPRESSING_EVENTS)
        # A group stays valid while each of its files is the very frame it was built from.
        self._built = [
            (group, built)
            for group, built in self._built
            if all(files.get(name) is frame for name, frame in group.items())
        ]
        covered = {name for group, _ in self._built for name in group}
        new = {name: frame for name, frame in files.items() if name not in covered}
        if new:
            frames = [f for f in new.values() if len(f)]
            landed = pd.concat(frames, ignore_index=True) if frames else None
            built = self._static.iloc[0:0] if landed is None else self._build_landed(landed)
            self._built.append((new, built))
        parts = [built for _, built in self._built]
        manual = self.landed_manual()
        if not manual.empty:
            parts.append(build_suppressions(None, None, manual, None))
        return [p for p in parts if not p.empty]

    def __call__(self) -> pd.DataFrame:
        """The warehouse's list plus what the landing folders hold now."""
        self.reads += 1
        parts = self._landed_parts()
        if not parts:
            return self._static
        fresh = (
            pd.concat(parts, ignore_index=True)
            .sort_values(_ORDER, na_position="last", kind="stable")
            .drop_duplicates()
        )
        return (
            pd.concat([self._static, fresh], ignore_index=True)
            .drop_duplicates()
            .reset_index(drop=True)
        )

    def for_check(self) -> pd.DataFrame:
        """:meth:`__call__` where a row may repeat (the send-time check looks rows up, so
        repeats change nothing): no de-duplication of the whole list before every window."""
        self.reads += 1
        parts = self._landed_parts()
        return pd.concat([self._static, *parts], ignore_index=True) if parts else self._static
