"""Builders for small catalogs and customer frames used by the campaigns unit tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from tessera.campaigns.catalog import Catalog

D0 = dt.date(2025, 3, 3)  # a Monday


def make_catalog(campaigns: list[dict[str, Any]], **policies: Any) -> Catalog:
    """A catalog whose target groups are g_<name> = customers listed in column `grp_<name>`."""
    groups = sorted(
        {g for c in campaigns for g in c["target_groups"]} | set(policies.get("always_exclude", []))
    )
    full = []
    for i, c in enumerate(campaigns):
        base = {
            "channels": ["email"],
            "priority": 10 + i,
            "duration_days": 0,
            "start": "2025-01-01",
        }
        base.update(c)
        base.setdefault("templates", {ch: f"t_{base['id']}_{ch}" for ch in base["channels"]})
        full.append(base)
    return Catalog.model_validate(
        {
            "dimensions": [
                {"id": "tenure", "attribute": "tenure_days", "bins": [30], "labels": ["new", "old"]}
            ],
            "target_groups": [{"id": g, "where": {"tenure_days": {"ge": 0}}} for g in groups],
            "campaigns": full,
            "policies": policies,
        }
    )


def membership(groups_by_customer: dict[str, list[str]], **reach: dict[str, bool]) -> pd.DataFrame:
    """A membership frame: customer -> target groups; every channel reachable unless overridden."""
    ids = sorted(groups_by_customer)
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "micro_segment_id": ["seg"] * len(ids),
            "target_groups": [groups_by_customer[c] for c in ids],
        }
    )
    for channel in ("email", "sms", "direct_mail", "webhook"):
        overrides = reach.get(channel, {})
        frame[f"is_{channel}_reachable"] = [overrides.get(c, True) for c in ids]
    return frame
