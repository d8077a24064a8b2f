"""A seeded transaction-log simulator (BG/NBD-like buyers, some fading) for tests and benchmarks."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd


def simulate_transactions(
    customers: int,
    seed: int,
    start: date,
    end: date,
    r: float = 0.8,
    alpha: float = 40.0,
    a: float = 0.8,
    b: float = 6.0,
    fading_share: float = 0.4,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Transactions (customer_id, ordered_at, amount) and per-customer truth, in [start, end).

    Purchase rates (per day) are Gamma(r, alpha), dropout after each purchase Beta(a, b). A
    `fading_share` of customers see their gaps lengthen by 25% after every purchase, a
    non-stationarity that BG/NBD cannot represent but recency trends reveal.
    """
    rng = np.random.default_rng(seed)
    span = (end - start).days
    signup = rng.uniform(0, span * 0.8, customers)
    lam = rng.gamma(r, 1.0 / alpha, customers)
    p = rng.beta(a, b, customers)
    fading = rng.random(customers) < fading_share
    mean_spend = rng.gamma(4.0, 15.0, customers)
    now = signup.copy()
    alive = np.ones(customers, bool)
    gap_scale = np.ones(customers)
    rows_c, rows_t = [], []
    # First purchase soon after signup, then the BG/NBD process; vectorised over customers.
    now = now + rng.exponential(5.0, customers)
    active = now < span
    k = 0
    while active.any() and k < 500:
        idx = np.flatnonzero(active)
        rows_c.append(idx)
        rows_t.append(now[idx])
        dies = rng.random(idx.size) < p[idx]
        alive[idx[dies]] = False
        gap_scale[idx] = np.where(fading[idx], gap_scale[idx] * 1.25, 1.0)
        now[idx] = now[idx] + rng.exponential(1.0, idx.size) / lam[idx] * gap_scale[idx]
        active = alive & (now < span)
        k += 1
    cust = np.concatenate(rows_c) if rows_c else np.array([], int)
    times = np.concatenate(rows_t) if rows_t else np.array([])
    amount = np.round(rng.gamma(6.0, mean_spend[cust] / 6.0) + 1.0, 2)
    base = pd.Timestamp(start)
    tx = pd.DataFrame(
        {
            "customer_id": np.char.add("C", np.char.zfill(cust.astype(str), 6)),
            "ordered_at": base + pd.to_timedelta(np.round(times * 86400), unit="s"),
            "amount": amount,
        }
    ).sort_values(["ordered_at", "customer_id"], kind="stable", ignore_index=True)
    truth = pd.DataFrame(
        {
            "customer_id": np.char.add("C", np.char.zfill(np.arange(customers).astype(str), 6)),
            "rate_per_day": lam,
            "dropout_p": p,
            "is_fading": fading,
            "mean_spend": mean_spend,
        }
    )
    return tx, truth
