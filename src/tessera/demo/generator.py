"""Synthetic demo shop: realistic customers, orders, events and newsletter history as landing Parquet.

This module drives the chunks and writes the tables atomically; each table is built in its own
module (``customers``, ``orders``, ``order_items``, ``events``, ``responses``), dirty rows in
``dirty``, the static world (vocabularies, calendar) in ``world``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tessera.demo.customers import _customers_table, _ground_truth, _latent, _signup_days
from tessera.demo.events import _events_table
from tessera.demo.order_items import _items_table
from tessera.demo.orders import _orders_table, _simulate_orders
from tessera.demo.responses import _responses_table
from tessera.demo.world import _Calendar, _calendar

log = logging.getLogger(__name__)

TABLES = ("customers", "orders", "order_items", "events", "campaign_responses")

# Customers per chunk: one part file per chunk and table, each chunk with its own random stream
# derived from (seed, chunk index), so the output never depends on how the work is scheduled.
CHUNK_SIZE = 100_000


class DemoShopError(ValueError):
    """The demo shop cannot be generated with the given arguments."""


@dataclass(frozen=True)
class ShopSummary:
    """What `generate_shop` wrote: row counts and part files per table, and the ground truth."""

    out_dir: Path
    ground_truth_path: Path
    customers: int
    seed: int
    start: date
    end: date
    dirty_rate: float
    rows: dict[str, int] = field(default_factory=dict)
    paths: dict[str, list[Path]] = field(default_factory=dict)
    elapsed_seconds: float = 0.0


def _generate_chunk(
    chunk_index: int,
    first: int,
    signup: np.ndarray,
    seed: int,
    cal: _Calendar,
    dirty_rate: float,
    start_s: int,
) -> tuple[dict[str, pa.Table], pa.Table]:
    # One random stream per chunk, drawn from table by table in this order.
    rng = np.random.default_rng([seed, 2, chunk_index])
    c = _latent(rng, first, signup)
    customers, c.email_invalid = _customers_table(rng, c, dirty_rate, start_s)
    customer_ids = customers.column("customer_id").combine_chunks()
    o = _simulate_orders(rng, c, cal)
    orders, order_ids = _orders_table(rng, o, c, chunk_index, dirty_rate, start_s, customer_ids)
    items = _items_table(o, order_ids)
    events = _events_table(rng, c, o, cal, customer_ids, start_s)
    responses = _responses_table(rng, c, o, cal, customer_ids, start_s)
    tables = {
        "customers": customers,
        "orders": orders,
        "order_items": items,
        "events": events,
        "campaign_responses": responses,
    }
    return tables, _ground_truth(c, cal, start_s, customer_ids, c.one_time)


def _write_chunk(
    tmp: Path,
    chunk_index: int,
    first: int,
    signup: np.ndarray,
    seed: int,
    cal: _Calendar,
    dirty_rate: float,
    start_s: int,
) -> tuple[dict[str, int], pa.Table]:
    """Generate one chunk, write its part files under ``tmp``; return row counts and truth."""
    tables, truth = _generate_chunk(chunk_index, first, signup, seed, cal, dirty_rate, start_s)
    rows = {}
    for name, table in tables.items():
        (tmp / name).mkdir(exist_ok=True)
        pq.write_table(table, tmp / name / f"part-{chunk_index:05d}.parquet", compression="zstd")
        rows[name] = table.num_rows
    log.info("demo shop: chunk %d (%d customers) written", chunk_index, truth.num_rows)
    return rows, truth


def _collect(results, truth_path: Path, rows: dict[str, int]) -> pq.ParquetWriter:
    """Add up row counts and append each chunk's ground truth, in chunk order."""
    writer: pq.ParquetWriter | None = None
    for chunk_rows, truth in results:
        for name, n in chunk_rows.items():
            rows[name] += n
        if writer is None:
            writer = pq.ParquetWriter(truth_path, truth.schema, compression="zstd")
        writer.write_table(truth)
    assert writer is not None
    return writer


def _validate(customers: int, start: date, end: date, dirty_rate: float) -> None:
    if isinstance(start, datetime) or isinstance(end, datetime):
        raise DemoShopError("start and end must be dates (data runs up to end 00:00 UTC)")
    if customers < 1:
        raise DemoShopError(f"customers must be at least 1, got {customers}")
    if start >= end:
        raise DemoShopError(f"start ({start}) must be before end ({end})")
    if not 0.0 <= dirty_rate <= 0.2:
        raise DemoShopError(f"dirty_rate must be between 0 and 0.2, got {dirty_rate}")


def generate_shop(
    out_dir: Path,
    customers: int,
    seed: int,
    start: date,
    end: date,
    dirty_rate: float = 0.01,
    workers: int = 1,
) -> ShopSummary:
    """Write a synthetic shop as landing Parquet under ``out_dir/<table>/part-NNNNN.parquet``.

    Data covers [start 00:00 UTC, end 00:00 UTC). The latent truth (purchase rates, dropout
    moments, basket values, affinities) goes to ``out_dir.parent/ground_truth/customers.parquet``,
    outside the landing folder. Tables are written to a temporary folder beside ``out_dir`` and
    renamed into place only when all are complete; existing tables in ``out_dir`` are replaced.
    Chunks of ``CHUNK_SIZE`` customers run on ``workers`` spawned processes when more than one
    (the caller's main module then needs an ``if __name__ == "__main__"`` guard).
    """
    _validate(customers, start, end, dirty_rate)
    began = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.parent.glob(f".{out_dir.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed run
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    cal = _calendar(start, end)
    start_s = int(np.datetime64(start, "s").astype(np.int64))
    signup = _signup_days(customers, seed, cal)
    rows = dict.fromkeys(TABLES, 0)
    gt_name = "ground_truth_customers.parquet"
    try:
        writer: pq.ParquetWriter | None = None
        jobs = [
            (tmp, k, first, signup[first : first + CHUNK_SIZE], seed, cal, dirty_rate, start_s)
            for k, first in enumerate(range(0, customers, CHUNK_SIZE))
        ]
        n_workers = max(1, min(workers, len(jobs)))
        if n_workers > 1:
            # Spawned workers: safe inside Dagster or threads; each chunk has its own seed, so
            # the files are the same whatever the number of workers.
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(n_workers, mp_context=ctx) as pool:
                results = pool.map(_write_chunk, *zip(*jobs, strict=True))
                writer = _collect(results, tmp / gt_name, rows)
        else:
            writer = _collect((_write_chunk(*job) for job in jobs), tmp / gt_name, rows)
        writer.close()

        out_dir.mkdir(parents=True, exist_ok=True)
        trash = tmp / "_replaced"
        trash.mkdir()
        for name in TABLES:
            target = out_dir / name
            if target.exists():
                target.rename(trash / name)
            (tmp / name).rename(target)
        truth_dir = out_dir.parent / "ground_truth"
        truth_dir.mkdir(exist_ok=True)
        truth_path = truth_dir / "customers.parquet"
        os.replace(tmp / gt_name, truth_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = ShopSummary(
        out_dir=out_dir,
        ground_truth_path=truth_path,
        customers=customers,
        seed=seed,
        start=start,
        end=end,
        dirty_rate=dirty_rate,
        rows=rows,
        paths={t: sorted((out_dir / t).glob("part-*.parquet")) for t in TABLES},
        elapsed_seconds=time.perf_counter() - began,
    )
    log.info("demo shop written to %s in %.1f s: %s", out_dir, summary.elapsed_seconds, rows)
    return summary
