"""The journeys' short read of the warehouse: customers, suppressions and daily contacts as files.

The warehouse has one writer at a time (the ``duckdb_warehouse`` pool). A journey run never
opens it: a separate step, under the pool, copies what the rules need into Parquet files under
``journeys/snapshot/`` (written atomically, seconds), and every trigger run reads those files.
So a trigger run never waits for a daily job holding the warehouse, and the daily job never
waits for a trigger run.

- ``customers``: the latest segmented date's customers: addresses, reachability per channel
  (the matrix's own consent rule, segments.segment_membership), always-exclude, target groups
  now and on the previous date (segment entry/exit triggers), features, scores and buckets
  (trigger and step conditions).
- ``suppressions``: the send-time suppression list (tessera.activations.suppression_sources).
- ``daily_history``: the matrix's assignments still locking or inside the longest cap window.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from tessera.activations.events import write_atomic_parquet
from tessera.activations.suppressions import SUPPRESSION_COLUMNS
from tessera.campaigns.catalog import Catalog
from tessera.journeys.paths import JourneyPaths
from tessera.warehouse.duckdb_io import read, table_exists

HISTORY_COLUMNS = [
    "as_of_date",
    "customer_id",
    "campaign_id",
    "channel",
    "is_control",
    "locked_until",
]
REACH_COLUMNS = [
    "is_email_reachable",
    "is_sms_reachable",
    "is_direct_mail_reachable",
    "is_webhook_reachable",
]


class SnapshotMissingError(RuntimeError):
    """No warehouse snapshot was taken yet (run the journey snapshot job once)."""


@dataclass(frozen=True)
class Snapshot:
    """What the journey rules read about customers (see the module docstring)."""

    as_of: dt.date | None
    taken_at: dt.datetime
    customers: pd.DataFrame
    suppressions: pd.DataFrame
    daily_history: pd.DataFrame

    @classmethod
    def empty(cls, taken_at: dt.datetime | None = None) -> Snapshot:
        return cls(
            None,
            taken_at or dt.datetime(2000, 1, 1),
            pd.DataFrame(
                {"customer_id": pd.Series(dtype="object"), "email": None, "phone": None}
            ).assign(**{c: pd.Series(dtype="bool") for c in REACH_COLUMNS}),
            pd.DataFrame(columns=SUPPRESSION_COLUMNS),
            pd.DataFrame(columns=HISTORY_COLUMNS),
        )


def write_snapshot(paths: JourneyPaths, snap: Snapshot) -> None:
    """Write the snapshot's files, then its meta file last (readers go by the meta file)."""
    folder = paths.snapshot_dir
    stamp = snap.taken_at.strftime("%Y%m%dT%H%M%S%f")
    names = {}
    for part in ("customers", "suppressions", "daily_history"):
        name = f"{part}-{stamp}.parquet"
        write_atomic_parquet(getattr(snap, part).reset_index(drop=True), folder, name)
        names[part] = name
    meta = {
        "as_of": snap.as_of.isoformat() if snap.as_of else None,
        "taken_at": snap.taken_at.isoformat(),
        "files": names,
    }
    tmp = folder / ".meta.json.tmp"
    tmp.write_text(json.dumps(meta), encoding="utf-8")
    tmp.replace(folder / "meta.json")
    for old in folder.glob("*.parquet"):  # earlier snapshots: no reader uses them any more
        if stamp not in old.name:
            old.unlink(missing_ok=True)


def read_snapshot(paths: JourneyPaths) -> Snapshot:
    meta_path = paths.snapshot_dir / "meta.json"
    if not meta_path.exists():
        raise SnapshotMissingError(
            f"no warehouse snapshot in {paths.snapshot_dir}: run the job journey_snapshot once "
            "(it also runs by itself when the snapshot is older than its interval)"
        )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    frames = {k: pd.read_parquet(paths.snapshot_dir / v) for k, v in meta["files"].items()}
    return Snapshot(
        as_of=dt.datetime.fromisoformat(meta["as_of"]).date() if meta["as_of"] else None,
        taken_at=dt.datetime.fromisoformat(meta["taken_at"]),
        **frames,
    )


def snapshot_age_s(paths: JourneyPaths, now: dt.datetime) -> float | None:
    meta_path = paths.snapshot_dir / "meta.json"
    if not meta_path.exists():
        return None
    taken = dt.datetime.fromisoformat(json.loads(meta_path.read_text())["taken_at"])
    return (now - taken).total_seconds()


def take_snapshot(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    landing_dir: Path,
    taken_at: dt.datetime,
) -> Snapshot:
    """Read the snapshot from the warehouse (a short read: call it under the warehouse pool)."""
    from tessera.activations.suppression_sources import SuppressionSources

    if not table_exists(con, "segments.segment_membership"):
        return Snapshot.empty(taken_at)
    dates = con.execute(
        "select distinct as_of_date from segments.segment_membership order by 1 desc limit 2"
    ).fetchall()
    if not dates:
        return Snapshot.empty(taken_at)
    # A date, also where the table holds timestamps (as the daily pipeline writes it).
    as_of = pd.Timestamp(dates[0][0]).date()
    previous = pd.Timestamp(dates[1][0]).date() if len(dates) > 1 else None
    # Each source's columns once, the first source that has a name wins (membership first).
    taken: set[str] = set()
    parts: list[str] = []
    joins: list[str] = []
    sources = [
        ("m", "segments.segment_membership", None),
        ("d", "marts.dim_customers", "d.customer_id = m.customer_id"),
        (
            "f",
            "marts.customer_features",
            "f.customer_id = m.customer_id and f.as_of_date = m.as_of_date",
        ),
        (
            "s",
            "ml.customer_scores",
            "s.customer_id = m.customer_id and s.as_of_date = m.as_of_date",
        ),
    ]
    for alias, table, on in sources:
        if on is not None and not table_exists(con, table):
            continue
        schema, name = table.split(".")
        columns = [
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, name],
            ).fetchall()
        ]
        for column in columns:
            if column not in taken:
                taken.add(column)
                parts.append(f'{alias}."{column}"')
        if on is not None:
            joins.append(f"left join {table} {alias} on {on}")
    customers = con.execute(
        f"""
        select {", ".join(parts)}, prev.target_groups as prev_target_groups
        from segments.segment_membership m
        left join segments.segment_membership prev
          on prev.customer_id = m.customer_id and prev.as_of_date = $prev
        {" ".join(joins)}
        where m.as_of_date = $d
        """,
        {"d": as_of, "prev": previous},
    ).df()
    excluded = set(catalog.policies.always_exclude)
    customers["is_always_excluded"] = customers["target_groups"].map(
        lambda groups: bool(excluded & set(groups if groups is not None else []))
    )
    lookback = max([cap.days for cap in catalog.policies.caps] + [1])
    history = read(
        con,
        """
        select as_of_date, customer_id, campaign_id, channel, is_control, locked_until
        from campaigns.campaign_assignments
        where locked_until > $d or as_of_date >= cast($d - to_days(cast($n as integer)) as date)
        """,
        {"d": as_of, "n": lookback},
    )
    suppressions = SuppressionSources(con, landing_dir)()
    return Snapshot(
        as_of=as_of,
        taken_at=taken_at,
        customers=customers,
        suppressions=suppressions[SUPPRESSION_COLUMNS],
        daily_history=history if history is not None else pd.DataFrame(columns=HISTORY_COLUMNS),
    )
