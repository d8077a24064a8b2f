"""The one store of provider events, and the one function every reader goes through.

Provider events (delivered, open, click, bounce, unsubscribe, spam report, conversion) take one
path. The event endpoint (``tessera.activations.events.EventReceiver``) is their only writer: it
lands each verified post as a file in ``landing/campaign_responses``, the source contract's
folder, beside any response history the shop lands itself. That folder is the store.

- The warehouse reads it like every source: the raw load copies the folder into
  ``raw.campaign_responses`` and dbt stages it (``marts.fct_campaign_responses``, the response
  features), so the feedback loop sees Tessera's own sends.
- Tessera's steps read it through :func:`provider_events`: the rows of the files the last raw
  load read (from ``raw.campaign_responses``) plus every file landed since (read from the
  folder through the loader's own contract check). Each file is read from exactly one of the
  two, by its landing-relative name, so nothing is counted twice and nothing waits for the
  next build: an unsubscribe the endpoint lands after the day's dbt build still stops that
  day's send.
- ``activations.provider_events`` is a snapshot of the endpoint's events for people who query
  the warehouse, rebuilt whole by :func:`publish_provider_events`; no step reads it.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from tessera.activations.events import FILE_PREFIX, LANDING_COLUMNS
from tessera.activations.suppressions import event_sql
from tessera.warehouse.duckdb_io import read
from tessera.warehouse.landing import landing_files, plan_table

#: The landing table (and folder) that holds provider events.
TABLE = "campaign_responses"
#: The raw load's copy of the folder.
RAW_TABLE = f"raw.{TABLE}"
SNAPSHOT_TABLE = "activations.provider_events"
#: What every reader gets: the contract's columns parsed (text trimmed, event names canonical,
#: occurred_at in UTC as dbt's staging parses it, revenue a finite number or NULL beside the
#: text it was parsed from), the file a row came from (landing-relative) and where it was read
#: (``raw:<file>`` or ``landing:<file>``).
COLUMNS = [*LANDING_COLUMNS, "revenue_text", "source_file", "source"]


def _text(col: str) -> str:
    return f"nullif(trim(cast({col} as varchar)), '')"


def _utc(col: str) -> str:
    """dbt's parse_utc_timestamp: an explicit offset is honoured, none means UTC (here without
    relying on the session's TimeZone, which dbt's profile sets and a Python connection may not)."""
    text = _text(col)
    return (
        f"(case when regexp_matches({text}, '(?i)[0-9]:[0-9]{{2}}(:[0-9]{{2}}([.][0-9]*)?)? *(z|utc|[+-][0-9]{{2}}(:?[0-9]{{2}})?)$') "
        f"then timezone('UTC', try_cast({text} as timestamp with time zone)) "
        f"else try_cast({text} as timestamp) end)"
    )


def _select(origin: str) -> str:
    number = f"try_cast({_text('revenue')} as double)"
    return ", ".join(
        [
            f"{_text('message_id')} as message_id",
            f"{_text('customer_id')} as customer_id",
            f"{_text('campaign_id')} as campaign_id",
            f"lower({_text('channel')}) as channel",
            f"{event_sql('event')} as event",
            f"{_utc('occurred_at')} as occurred_at",
            f"(case when isfinite({number}) then {number} end) as revenue",
            f"{_text('revenue')} as revenue_text",
            "_source_file as source_file",
            f"'{origin}:' || _source_file as source",
        ]
    )


def _where(events: Iterable[str] | None, before: dt.date | dt.datetime | None) -> str:
    parts = ["true"]
    if events is not None:
        names = ", ".join(f"'{e}'" for e in events)
        parts.append(f"{event_sql('event')} in ({names})")
    if before is not None:
        parts.append(f"{_utc('occurred_at')} < cast('{before.isoformat()}' as timestamp)")
    return " and ".join(parts)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS})


def read_landing(
    landing_dir: Path,
    table: str,
    select: str,
    where: str = "true",
    skip: frozenset[str] = frozenset(),
    only: frozenset[str] | None = None,
) -> pd.DataFrame:
    """``select`` over one landing table's files as landed (text), now; empty when it has none.

    Files whose name or landing-relative path is in ``skip`` are not read; with ``only``, only
    the files whose landing-relative path is in it. The loader's own
    contract check and raw read (tessera.warehouse.landing) do the reading, so a file the raw
    load would refuse is refused here too: the send stops rather than skip an unsubscribe.
    """
    landing_dir = Path(landing_dir)
    files = [
        p
        for p in landing_files(landing_dir, table)
        if p.name not in skip
        and str(p.relative_to(landing_dir)) not in skip
        and (only is None or str(p.relative_to(landing_dir)) in only)
    ]
    if not files:
        return pd.DataFrame()
    con = duckdb.connect()
    try:
        with tempfile.TemporaryDirectory(prefix="tessera-landing-") as tmp:
            # Only the files to read, under the same relative names (so _source_file matches).
            view = Path(tmp)
            for path in files:
                target = view / path.relative_to(landing_dir)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(path.resolve(), target)  # absolute: a relative landing_dir too
            _, sql = plan_table(con, view, table)
            if sql is None:
                return pd.DataFrame()
            return con.execute(f"select {select} from ({sql}) where {where}").df()
    finally:
        con.close()


def loaded_files(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Files of the store whose rows the warehouse holds (landing-relative names).

    None before the first raw load (``raw.campaign_responses`` is created by it, empty for a
    shop without responses): then every landed file is still to be read from the folder.
    """
    frame = read(con, f"select distinct _source_file from {RAW_TABLE}")
    if frame is None or frame.empty:
        return frozenset()
    return frozenset(str(v) for v in frame.iloc[:, 0].dropna())


class ProviderEvents:
    """The store as one connection sees it: what the warehouse loaded and what landed since.

    The loaded part cannot change while a step holds the warehouse; the landed part can, so
    :meth:`landed` lists the folder again on every call. A landed file is read once and again
    only when its size or modification time changes (the endpoint's files never change), so a
    check before every window of requests costs the files that are new since the last one.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, landing_dir: Path) -> None:
        self._con = con
        self.landing_dir = Path(landing_dir)
        #: Files read from ``raw.campaign_responses`` (never from the folder).
        self.known_files = loaded_files(con)
        #: (events, before) -> landing-relative file -> ((mtime_ns, size), its rows).
        self._read: dict[tuple, dict[str, tuple[tuple[int, int], pd.DataFrame]]] = {}

    def loaded(
        self,
        events: Iterable[str] | None = None,
        before: dt.date | dt.datetime | None = None,
        endpoint_only: bool = False,
    ) -> pd.DataFrame:
        """Rows of the files the last raw load read (as landed: also rows staging holds back);
        with ``endpoint_only``, only those of the event endpoint's files (filtered in SQL: the
        shop's own response exports are most of the table)."""
        where = _where(events, before)
        if endpoint_only:
            where += f" and starts_with(regexp_extract(_source_file, '[^/]*$'), '{FILE_PREFIX}')"
        frame = read(self._con, f"select {_select('raw')} from {RAW_TABLE} where {where}")
        return _empty() if frame is None or frame.empty else frame[COLUMNS]

    def landed(
        self,
        events: Iterable[str] | None = None,
        before: dt.date | dt.datetime | None = None,
        endpoint_only: bool = False,
    ) -> pd.DataFrame:
        """Rows of the files landed since the raw load, as the folder holds them now; with
        ``endpoint_only``, only the event endpoint's files (before the first raw load of a run
        the shop's own response exports are still in the folder and are most of its rows)."""
        frames = [f for f in self.landed_by_file(events, before, endpoint_only).values() if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else _empty()

    def landed_by_file(
        self,
        events: Iterable[str] | None = None,
        before: dt.date | dt.datetime | None = None,
        endpoint_only: bool = False,
    ) -> dict[str, pd.DataFrame]:
        """:meth:`landed` per file, in file name order. A file's frame is the same object from
        call to call until the file changes, so callers can cache what they derive from it."""
        stamps = {}
        for path in landing_files(self.landing_dir, TABLE):
            name = str(path.relative_to(self.landing_dir))
            if endpoint_only and not path.name.startswith(FILE_PREFIX):
                continue
            if name not in self.known_files and path.name not in self.known_files:
                stat = path.stat()
                stamps[name] = (stat.st_mtime_ns, stat.st_size)
        key = (None if events is None else tuple(events), before, endpoint_only)
        cached = self._read.setdefault(key, {})
        for name in set(cached) - set(stamps):
            del cached[name]  # removed from the folder
        fresh = frozenset(n for n, stamp in stamps.items() if cached.get(n, (None,))[0] != stamp)
        if fresh:
            frame = read_landing(
                self.landing_dir, TABLE, _select("landing"), _where(events, before), only=fresh
            )
            rows = _empty() if frame.empty else frame[COLUMNS]
            by_file = dict(iter(rows.groupby("source_file", sort=False)))
            for name in fresh:
                cached[name] = (stamps[name], by_file.get(name, _empty()))
        return {n: cached[n][1] for n in sorted(stamps)}

    def __call__(
        self,
        events: Iterable[str] | None = None,
        before: dt.date | dt.datetime | None = None,
    ) -> pd.DataFrame:
        frames = [f for f in (self.loaded(events, before), self.landed(events, before)) if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else _empty()


def provider_events(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    events: Iterable[str] | None = None,
    before: dt.date | dt.datetime | None = None,
) -> pd.DataFrame:
    """Every provider event known now (columns :data:`COLUMNS`), optionally only the given
    event names (canonical or alias) and only those that occurred before ``before`` (UTC)."""
    return ProviderEvents(con, landing_dir)(events, before)


@dataclass(frozen=True)
class EventSnapshot:
    """What one publish of activations.provider_events found."""

    #: Endpoint files landed since the raw load (read from the folder, not the warehouse).
    new_files: int
    #: The endpoint's events per type: event, events.
    by_event: pd.DataFrame

    @property
    def events(self) -> int:
        return int(self.by_event["events"].sum()) if not self.by_event.empty else 0


def publish_provider_events(con: duckdb.DuckDBPyConnection, landing_dir: Path) -> EventSnapshot:
    """Replace activations.provider_events with the endpoint's events as the store holds them
    now (a snapshot for SQL readers; Tessera's steps read :func:`provider_events`)."""
    store = ProviderEvents(con, landing_dir)
    loaded, landed = store.loaded(endpoint_only=True), store.landed(endpoint_only=True)
    frames = [f for f in (loaded, landed) if len(f)]
    rows = pd.concat(frames, ignore_index=True) if frames else _empty()
    new_files = rows.loc[rows["source"].str.startswith("landing:"), "source_file"].nunique()
    con.execute("create schema if not exists activations")
    con.register("_provider_events", rows)
    try:
        con.execute(
            f"""create or replace table {SNAPSHOT_TABLE} as
            select cast(message_id as varchar) as message_id,
                   cast(customer_id as varchar) as customer_id,
                   cast(campaign_id as varchar) as campaign_id,
                   cast(channel as varchar) as channel, cast(event as varchar) as event,
                   cast(occurred_at as timestamp) as occurred_at,
                   cast(revenue as double) as revenue,
                   cast(source_file as varchar) as source_file
            from _provider_events"""
        )
    finally:
        con.unregister("_provider_events")
    by_event = con.execute(
        f"select event, count(*) as events from {SNAPSHOT_TABLE} group by 1 order by 1"
    ).df()
    return EventSnapshot(new_files=int(new_files), by_event=by_event)
