"""Measuring campaigns as of a date: read assignments, orders and conversions, store the results."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from tessera.activations.event_store import provider_events
from tessera.activations.results import campaign_results
from tessera.quality.registry import registry
from tessera.reporting import png_markdown
from tessera.warehouse.duckdb_io import replace_dates

#: The columns of a result a reader scans first (the asset's preview).
SUMMARY_COLUMNS = [
    "campaign_id",
    "treatment_n",
    "control_n",
    "treatment_rate",
    "control_rate",
    "abs_lift",
    "abs_lift_ci_low",
    "abs_lift_ci_high",
    "rel_lift",
    "p_value",
    "revenue_lift_per_customer",
]


@dataclass(frozen=True)
class Measurement:
    """The stored results of one report date."""

    results: pd.DataFrame

    @property
    def summary(self) -> pd.DataFrame:
        return self.results[SUMMARY_COLUMNS]

    @property
    def has_intervals(self) -> bool:
        return not self.results.empty and bool(self.results["abs_lift_ci_low"].notna().any())


def conversions_before(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, day: dt.date
) -> pd.DataFrame:
    """Attributed conversion events before ``day`` (customer_id, campaign_id, occurred_at,
    revenue) from the provider event store, as the contract allows them: a missing key, a
    channel the contract does not know or a revenue that is not a number >= 0 makes the row no
    conversion, as staging quarantines it; a re-delivered event (same message and time)
    counts once."""
    events = provider_events(con, landing_dir, ("conversion",), before=day)
    channels = registry().accepted("campaign_responses", "invalid_channel")
    valid = (
        events["message_id"].notna()
        & events["customer_id"].notna()
        & events["campaign_id"].notna()
        & events["channel"].isin(channels)
        & ~(events["revenue"].astype(float) < 0)
        & (events["revenue_text"].isna() | events["revenue"].notna())
    )
    conversions = events[valid].drop_duplicates(["message_id", "occurred_at"])
    return conversions[["customer_id", "campaign_id", "occurred_at", "revenue"]].reset_index(
        drop=True
    )


def measure_day(con: duckdb.DuckDBPyConnection, day: dt.date, landing_dir: Path) -> Measurement:
    """Treatment vs control per campaign over every cohort before ``day``; replaces the date's
    rows of activations.campaign_results."""
    assignments = con.execute(
        "select as_of_date, customer_id, campaign_id, is_control, duration_days "
        "from campaigns.campaign_assignments where as_of_date < $d",
        {"d": day},
    ).df()
    orders = con.execute(
        "select customer_id, ordered_at, amount, status from marts.fct_orders where ordered_at < $d",
        {"d": day},
    ).df()
    results = campaign_results(day, assignments, orders, conversions_before(con, landing_dir, day))
    con.execute("create schema if not exists activations")
    replace_dates(con, [("activations.campaign_results", results)], day)
    return Measurement(results=results)


def lift_chart(results: pd.DataFrame) -> str:
    """Markdown with a PNG: absolute conversion lift per campaign with its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = results.dropna(subset=["abs_lift_ci_low"]).sort_values("abs_lift")
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(r) + 1.2))
    y = range(len(r))
    ax.errorbar(
        r["abs_lift"] * 100,
        list(y),
        xerr=[
            (r["abs_lift"] - r["abs_lift_ci_low"]) * 100,
            (r["abs_lift_ci_high"] - r["abs_lift"]) * 100,
        ],
        fmt="o",
        capsize=3,
    )
    ax.axvline(0, color="grey", lw=1)
    ax.set_yticks(list(y), r["campaign_id"])
    ax.set_xlabel("conversion lift, percentage points (95% CI)")
    text = png_markdown(fig, "lift per campaign")
    plt.close(fig)
    return text
