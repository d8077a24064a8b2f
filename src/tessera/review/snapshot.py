"""A read-only copy of the tables the review app shows, so pages load while a run writes.

DuckDB lets one process write a file, and a writer's lock also keeps readers of other
processes out. The app therefore never reads the warehouse per request: it reads its own copy
(``review/snapshot.duckdb`` in the data folder), refreshed when the warehouse is free. The copy
is written to a temporary file and renamed over the old one, so a page never sees half a copy.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)

#: The tables the pages read (missing ones are skipped: a young warehouse has few).
SNAPSHOT_TABLES = (
    "campaigns.campaign_matrix",
    "campaigns.campaign_plan",
    "campaigns.campaign_assignments",
    "campaigns.exclusions",
    "campaigns.matrix_runs",
    "campaigns.plan_vs_actual",
    "segments.micro_segments",
    "segments.segment_membership",
    "ml.customer_scores",
    "marts.dim_customers",
    "activations.outbound_messages",
    "activations.deliveries",
    "activations.campaign_results",
    "activations.send_approvals",
    "activations.send_approval_messages",
    "activations.programme_results",
    "campaigns.global_control",
    "quality.row_counts",
    "quarantine.quarantine_customers",
    "quarantine.quarantine_orders",
    "quarantine.quarantine_order_items",
    "quarantine.quarantine_events",
    "quarantine.quarantine_campaign_responses",
    "audit.approvals",
    "activations.send_holds",
    "raw.external_contacts",
    "audit.messages",
    "audit.collisions",
)

SNAPSHOT_FILE = "snapshot.duckdb"


class WarehouseBusyError(RuntimeError):
    """The warehouse is being written by another process (a daily run): try again later."""


@dataclass(frozen=True)
class SnapshotState:
    """Where the pages read from and how fresh it is."""

    path: Path
    refreshed_at: dt.datetime | None
    #: Why the last refresh attempt did not happen ("" when it did or none was tried).
    stale_reason: str = ""


def warehouse_is_quiet(warehouse: Path, quiet_seconds: float) -> bool:
    """Whether no writer looks active: no write-ahead log beside the file and no change to it in
    the last ``quiet_seconds``. Checked before opening, so the app rarely takes the file's lock
    in the moment a run's step is about to open it."""
    wal = warehouse.with_name(warehouse.name + ".wal")
    if wal.exists():
        return False
    try:
        age = time.time() - warehouse.stat().st_mtime
    except FileNotFoundError:
        return False
    return age >= quiet_seconds


def copy_tables(warehouse: Path, target: Path, tables: tuple[str, ...] = SNAPSHOT_TABLES) -> int:
    """Copy ``tables`` (those that exist) from ``warehouse`` into a new file ``target``.

    Raises WarehouseBusyError when another process holds the warehouse's write lock. Returns
    how many tables were copied.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    source = duckdb.connect()
    try:
        source.execute(f"attach '{warehouse}' as wh (read_only)")
    except duckdb.IOException as exc:
        source.close()
        raise WarehouseBusyError(f"{warehouse} is locked by another process: {exc}") from None
    copied = 0
    try:
        present = {
            f"{s}.{t}"
            for s, t in source.execute(
                "select schema_name, table_name from duckdb_tables() where database_name = 'wh'"
            ).fetchall()
        }
        source.execute(f"attach '{tmp}' as snap")
        for table in tables:
            if table not in present:
                continue
            schema = table.split(".")[0]
            source.execute(f"create schema if not exists snap.{schema}")
            source.execute(f"create table snap.{table} as select * from wh.{table}")
            copied += 1
        source.execute("detach snap")
        source.execute("detach wh")
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    os.replace(tmp, target)
    return copied


class Snapshot:
    """The app's snapshot of one warehouse: refreshed at most every ``max_age`` seconds, and
    only while the warehouse is quiet; otherwise the previous copy is served with its age."""

    def __init__(
        self,
        warehouse: Path,
        folder: Path,
        max_age: float = 60.0,
        quiet_seconds: float = 5.0,
    ) -> None:
        self.warehouse = warehouse
        self.path = folder / SNAPSHOT_FILE
        self.max_age = max_age
        self.quiet_seconds = quiet_seconds
        self._lock = threading.Lock()
        self._checked = 0.0
        self._stale_reason = ""

    @property
    def refreshed_at(self) -> dt.datetime | None:
        if not self.path.exists():
            return None
        return dt.datetime.fromtimestamp(self.path.stat().st_mtime, dt.UTC)

    def state(self) -> SnapshotState:
        return SnapshotState(self.path, self.refreshed_at, self._stale_reason)

    def refresh(self, force: bool = False) -> bool:
        """Copy the warehouse now if it is quiet (``force``, or no copy yet: even if it changed
        recently, as right after this app wrote an approval). True when the copy was made."""
        with self._lock:
            self._checked = time.monotonic()
            if not self.warehouse.exists():
                self._stale_reason = f"no warehouse at {self.warehouse} yet (run `make run`)"
                return False
            # Without any copy there is nothing to serve: try even a file that just changed
            # (a locked one still refuses, below).
            if (
                not force
                and self.path.exists()
                and not warehouse_is_quiet(self.warehouse, self.quiet_seconds)
            ):
                self._stale_reason = "a run is writing the warehouse"
                return False
            try:
                copied = copy_tables(self.warehouse, self.path)
            except WarehouseBusyError:
                self._stale_reason = "a run is writing the warehouse"
                return False
            self._stale_reason = ""
            log.info("review snapshot refreshed: %d tables from %s", copied, self.warehouse)
            return True

    def maybe_refresh(self) -> None:
        """Refresh when the copy is missing or older than ``max_age`` (checked at most once per
        ``max_age`` while the warehouse stays busy)."""
        if self.path.exists() and time.monotonic() - self._checked < self.max_age:
            return
        self.refresh()

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the copy (an empty in-memory one before the first copy)."""
        self.maybe_refresh()
        if not self.path.exists():
            return duckdb.connect()
        return duckdb.connect(str(self.path), read_only=True)
