"""Where the journey path keeps its files inside the data folder (one definition)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class JourneyPaths:
    """``<data_dir>/journeys/``: the trigger queue, rejects, the state store and the snapshot.

    The state store is a DuckDB file of its own (never the warehouse), written only by journey
    runs; the warehouse snapshot and the contacts export are Parquet files written atomically,
    so neither path ever holds the other's DuckDB lock.
    """

    root: Path

    @classmethod
    def of(cls, data_dir: Path | str) -> JourneyPaths:
        return cls(Path(data_dir) / "journeys")

    @property
    def queue_dir(self) -> Path:
        """Accepted events, one Parquet file per post (name sorts by arrival)."""
        return self.root / "queue"

    @property
    def rejects_path(self) -> Path:
        return self.root / "rejects.jsonl"

    @property
    def seen_path(self) -> Path:
        return self.root / "seen_event_ids.txt"

    @property
    def state_path(self) -> Path:
        return self.root / "state.duckdb"

    @property
    def snapshot_dir(self) -> Path:
        """The short read of the warehouse (customers, suppressions, daily contacts)."""
        return self.root / "snapshot"

    @property
    def contacts_path(self) -> Path:
        """Journey contacts and locks, read by the daily matrix as history."""
        return self.root / "contacts.parquet"

    @property
    def next_due_path(self) -> Path:
        """The earliest pending step's due time (ISO), so the sensor knows when to run again."""
        return self.root / "next_due.txt"
