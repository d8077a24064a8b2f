"""Thompson-sampling allocation of a campaign's actions (2-4 variants) for one date.

The core of issue 15's self-optimising campaigns, not yet wired into the catalog or the sends:
given each action's evidence from closed conversion windows, it returns the day's traffic
shares, and it splits a date's treated customers between the actions by those shares.

- Evidence counts only windows that closed before the date (a conversion still possible is
  neither a success nor a failure), so open windows never bias a posterior toward zero.
- Until every action has ``MIN_TARGETED`` targeted customers and ``MIN_RESPONDERS`` responders,
  the split stays even (Optimove's minimum evidence).
- Posteriors are Beta(1 + conversions, 1 + targeted - conversions); an action's share is the
  probability that it is the best, estimated from ``DRAWS`` joint draws.
- Everything is seeded by (salt, campaign, date): the same inputs give the same shares and the
  same customer-to-action split on every rerun and in every process.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

MIN_TARGETED = 50
MIN_RESPONDERS = 15
DRAWS = 20_000
MIN_ACTIONS, MAX_ACTIONS = 2, 4


@dataclass(frozen=True)
class Allocation:
    """The shares of one campaign date, and why."""

    shares: dict[str, float]  # action id -> share of the treated customers
    is_exploring: bool  # True: minimum evidence not met, even split
    posteriors: pd.DataFrame  # action_id, targeted, conversions, alpha, beta, mean, low, high


def _seed(salt: str, campaign_id: str, day: dt.date, purpose: str) -> int:
    text = f"{salt}:bandit:{purpose}:{campaign_id}:{day.isoformat()}"
    return int.from_bytes(hashlib.md5(text.encode()).digest()[8:], "little")


def allocate(
    evidence: pd.DataFrame,
    actions: list[str],
    campaign_id: str,
    day: dt.date,
    salt: str = "tessera",
) -> Allocation:
    """The shares of ``actions`` on ``day`` from ``evidence`` (action_id, targeted, conversions
    over closed windows; a missing action has none)."""
    if not MIN_ACTIONS <= len(actions) <= MAX_ACTIONS or len(set(actions)) != len(actions):
        raise ValueError(
            f"campaign {campaign_id}: needs {MIN_ACTIONS}-{MAX_ACTIONS} distinct actions, "
            f"got {actions}"
        )
    ev = (
        evidence.set_index("action_id")[["targeted", "conversions"]]
        .reindex(actions)
        .fillna(0)
        .astype("int64")
    )
    if (ev["conversions"] > ev["targeted"]).any() or (ev < 0).any().any():
        raise ValueError(f"campaign {campaign_id}: conversions must be 0..targeted per action")
    alpha = 1 + ev["conversions"].to_numpy(float)
    beta = 1 + (ev["targeted"] - ev["conversions"]).to_numpy(float)
    rng = np.random.default_rng(_seed(salt, campaign_id, day, "draws"))
    draws = rng.beta(alpha, beta, size=(DRAWS, len(actions)))
    posteriors = pd.DataFrame(
        {
            "action_id": actions,
            "targeted": ev["targeted"].to_numpy(),
            "conversions": ev["conversions"].to_numpy(),
            "alpha": alpha,
            "beta": beta,
            "mean": alpha / (alpha + beta),
            "low": np.quantile(draws, 0.025, axis=0),
            "high": np.quantile(draws, 0.975, axis=0),
        }
    )
    exploring = bool(
        (ev["targeted"] < MIN_TARGETED).any() or (ev["conversions"] < MIN_RESPONDERS).any()
    )
    if exploring:
        shares = np.full(len(actions), 1 / len(actions))
    else:
        best = np.bincount(draws.argmax(axis=1), minlength=len(actions))
        shares = best / best.sum()
    return Allocation(
        shares=dict(zip(actions, shares.tolist(), strict=True)),
        is_exploring=exploring,
        posteriors=posteriors,
    )


def assign_actions(
    customer_ids: pd.Series,
    allocation: Allocation,
    campaign_id: str,
    day: dt.date,
    salt: str = "tessera",
) -> pd.Series:
    """Each customer's action: a salted per-date hash bucket against the cumulative shares."""
    names = list(allocation.shares)
    edges = np.cumsum([allocation.shares[a] for a in names])
    edges[-1] = 1.0
    key = f"{salt}:bandit:assign:{campaign_id}:{day.isoformat()}:"
    frame = pd.DataFrame(
        {"i": np.arange(len(customer_ids)), "customer_id": customer_ids.astype(str).to_numpy()}
    )
    con = duckdb.connect()
    try:
        con.register("ids", frame)
        # md5_number_lower: the lower 64 bits of the digest, as global_control.bucket reads them
        buckets = (
            con.execute(
                "select md5_number_lower($key || customer_id) / 18446744073709551616.0 as u"
                " from ids order by i",
                {"key": key},
            )
            .df()["u"]
            .to_numpy()
        )
    finally:
        con.close()
    picks = np.searchsorted(edges, buckets, side="right").clip(max=len(names) - 1)
    return pd.Series(np.asarray(names, dtype=object)[picks], index=customer_ids.index)


def expected_gain(allocation: Allocation) -> float:
    """Expected conversion rate of the day's shares minus that of an even split (posterior means)."""
    means = allocation.posteriors.set_index("action_id")["mean"]
    chosen = sum(share * means[a] for a, share in allocation.shares.items())
    return float(chosen - means.mean())
