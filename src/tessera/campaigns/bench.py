"""A synthetic benchmark of the matrix engine: N customers x M campaigns for one date."""

from __future__ import annotations

import datetime as dt
import logging
import time

import numpy as np
import pandas as pd
import pyarrow as pa

from tessera.campaigns.catalog import Campaign, Cap, Catalog, Dimension, Policies, TargetGroup
from tessera.campaigns.engine import HISTORY_COLUMNS, assign_campaigns

log = logging.getLogger(__name__)

_CHANNEL_SETS = (["email"], ["email", "sms"], ["sms"], ["direct_mail"], ["webhook", "email"])


def synthetic_catalog(campaigns: int, groups: int = 20, seed: int = 0) -> Catalog:
    """A valid catalog of ``campaigns`` campaigns over ``groups`` target groups."""
    rng = np.random.default_rng(seed)
    start = dt.date(2025, 1, 1)
    target_groups = [
        TargetGroup(id=f"g{i}", where={"tenure_days": {"ge": 0}}) for i in range(groups)
    ]
    camps = []
    for i in range(campaigns):
        channels = _CHANNEL_SETS[i % len(_CHANNEL_SETS)]
        picks = rng.choice(groups, size=int(rng.integers(1, 4)), replace=False)
        camps.append(
            Campaign(
                id=f"c{i:03d}",
                target_groups=[f"g{j}" for j in sorted(picks)],
                channels=channels,
                priority=int(rng.integers(1, 100)),
                tie_break=i,
                duration_days=int(rng.integers(0, 15)),
                start=start,
                control_share=0.1,
                ignore_locks=bool(i % 17 == 0),
                templates={ch: f"t{i}_{ch}" for ch in channels},
            )
        )
    return Catalog(
        dimensions=[Dimension(id="tenure", attribute="tenure_days", bins=[30], labels=["a", "b"])],
        target_groups=target_groups,
        campaigns=camps,
        policies=Policies(
            caps=[Cap(id="weekly", channels=["email", "sms"], max_contacts=3, days=7)],
            capacity={"direct_mail": 5_000, "sms": 50_000},
        ),
    )


def synthetic_membership(customers: int, groups: int = 20, seed: int = 0) -> pa.Table:
    """Customers each in 0-4 random target groups, with random channel reachability."""
    rng = np.random.default_rng(seed)
    ids = np.char.add("cust", np.arange(customers).astype(str)).astype(object)
    counts = rng.integers(0, 5, size=customers)
    flat = rng.integers(0, groups, size=int(counts.sum()))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    names = np.array([f"g{i}" for i in range(groups)], dtype=object)
    # built as Arrow: a list column of Python lists would time the conversion, not the engine
    target_groups = pa.ListArray.from_arrays(
        pa.array(offsets, type=pa.int32()), pa.array(names[flat], type=pa.string())
    )
    segments = np.array(["s0", "s1", "s2", "s3"], dtype=object)
    return pa.table(
        {
            "customer_id": pa.array(ids, type=pa.string()),
            "micro_segment_id": pa.array(segments[rng.integers(0, 4, size=customers)]),
            "target_groups": target_groups,
            "is_email_reachable": rng.random(customers) < 0.8,
            "is_sms_reachable": rng.random(customers) < 0.4,
            "is_direct_mail_reachable": np.ones(customers, dtype=bool),
            "is_webhook_reachable": rng.random(customers) < 0.3,
        }
    )


def synthetic_history(
    membership: pa.Table, catalog: Catalog, as_of: dt.date, seed: int
) -> pd.DataFrame:
    """A week of earlier assignments for a fifth of the customers (locks and caps to check)."""
    rng = np.random.default_rng(seed + 1)
    n = len(membership) // 5
    who = rng.choice(
        membership.column("customer_id").to_numpy(zero_copy_only=False), size=n, replace=False
    )
    days_back = rng.integers(1, 8, size=n)
    camp = rng.integers(0, len(catalog.campaigns), size=n)
    dates = pd.to_datetime(as_of) - pd.to_timedelta(days_back, unit="D")
    durations = np.array([catalog.campaigns[i].duration_days for i in camp])
    return pd.DataFrame(
        {
            "as_of_date": dates,
            "customer_id": who,
            "campaign_id": [catalog.campaigns[i].id for i in camp],
            "channel": [catalog.campaigns[i].channels[0] for i in camp],
            "is_control": rng.random(n) < 0.1,
            "locked_until": dates + pd.to_timedelta(durations, unit="D"),
        }
    )[HISTORY_COLUMNS]


def run_matrix_benchmark(customers: int = 1_000_000, campaigns: int = 50, seed: int = 0) -> dict:
    """Time one matrix date on synthetic inputs; returns seconds and output sizes."""
    as_of = dt.date(2025, 3, 1)
    catalog = synthetic_catalog(campaigns, seed=seed)
    membership = synthetic_membership(customers, seed=seed)
    history = synthetic_history(membership, catalog, as_of, seed)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = assign_campaigns(membership, catalog, as_of, history)
    seconds = time.perf_counter() - started
    # CPU seconds of all threads: on a shared machine wall time also counts other processes
    cpu_seconds = time.process_time() - cpu_started
    figures = {
        "customers": customers,
        "campaigns": campaigns,
        "history_rows": len(history),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),
        "assignments": result.assignments.num_rows,
        "exclusions": result.exclusions.num_rows,
        "matrix_rows": result.matrix.num_rows,
    }
    log.info("matrix benchmark: %s", figures)
    return figures


if __name__ == "__main__":
    import json
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(json.dumps(run_matrix_benchmark(n)))  # noqa: T201 - a command-line entry point
