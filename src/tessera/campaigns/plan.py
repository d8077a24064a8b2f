"""Forward plan: project the matrix for the next N days from today's segments, and compare later."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa

from tessera.campaigns.catalog import Catalog
from tessera.campaigns.engine import _as_history, assign_campaigns

#: campaigns.campaign_plan, typed so that a plan without rows still creates its table.
PLAN_SCHEMA = pa.schema(
    [
        ("plan_date", pa.date32()),
        ("as_of_date", pa.date32()),
        ("micro_segment_id", pa.string()),
        ("campaign_id", pa.string()),
        ("customer_count", pa.int64()),
        ("control_count", pa.int64()),
    ]
)
PLAN_COLUMNS = PLAN_SCHEMA.names
#: campaigns.plan_vs_actual.
PLAN_VS_ACTUAL_SCHEMA = pa.schema(
    [
        ("as_of_date", pa.date32()),
        ("plan_date", pa.date32()),
        ("horizon_days", pa.int64()),
        ("campaign_id", pa.string()),
        ("planned", pa.int64()),
        ("actual", pa.int64()),
        ("difference", pa.int64()),
    ]
)


def as_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """``frame`` as an Arrow table of ``schema`` (its types kept also when it has no rows)."""
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def project_plan(
    membership: pd.DataFrame,
    catalog: Catalog,
    plan_date: dt.date,
    days: int = 14,
    history: pd.DataFrame | pa.Table | None = None,
) -> pd.DataFrame:
    """The matrix of ``plan_date+1 .. plan_date+days`` if segments stayed as on ``plan_date``.

    Each projected day sees the locks and caps of the real history and of the projected days
    before it, so collisions (locks, caps, capacity) and gaps show up before they happen.
    """
    hist = _as_history(history) if history is not None else None
    frames = []
    for n in range(1, days + 1):
        day = plan_date + dt.timedelta(days=n)
        result = assign_campaigns(membership, catalog, day, hist)
        frames.append(result.matrix.to_pandas())
        new = _as_history(result.assignments)
        hist = new if hist is None else pa.concat_tables([hist, new])
    plan = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if plan.empty:
        return pd.DataFrame(columns=PLAN_COLUMNS)
    plan.insert(0, "plan_date", plan_date)
    return plan[PLAN_COLUMNS]


def plan_vs_actual(plans: pd.DataFrame, actual_matrix: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """Planned vs actual customers per campaign on ``day``, for each earlier plan covering it."""
    cols = PLAN_VS_ACTUAL_SCHEMA.names[:-1]
    p = plans[pd.to_datetime(plans["as_of_date"]).dt.date == day]
    planned = (
        p.groupby(["plan_date", "campaign_id"])["customer_count"].sum().rename("planned")
        if not p.empty
        else pd.Series(dtype="int64", name="planned")
    )
    actual = actual_matrix.groupby("campaign_id")["customer_count"].sum().rename("actual")
    if planned.empty:
        return pd.DataFrame(columns=[*cols, "difference"])
    rows = []
    for plan_date, group in planned.reset_index().groupby("plan_date"):
        merged = group.set_index("campaign_id")["planned"].to_frame().join(actual, how="outer")
        merged = merged.fillna(0).astype("int64").reset_index()
        merged["plan_date"] = pd.to_datetime(plan_date).date()
        rows.append(merged)
    out = pd.concat(rows, ignore_index=True)
    out["as_of_date"] = day
    out["horizon_days"] = [(day - d).days for d in out["plan_date"]]
    out["difference"] = out["actual"] - out["planned"]
    return out[[*cols, "difference"]].sort_values(["plan_date", "campaign_id"], ignore_index=True)
