"""Measuring campaigns as of a date: read assignments, orders and conversions, store the results."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from tessera.activations.event_store import provider_events
from tessera.activations.results import (
    campaign_results,
    programme_outcomes,
    programme_results,
    programme_series,
)
from tessera.quality.registry import registry
from tessera.reporting import png_markdown
from tessera.warehouse.duckdb_io import read, replace_dates

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


PROGRAMME_TABLE = "activations.programme_results"
#: The columns of the programme rows a reader scans first.
PROGRAMME_SUMMARY = [
    "scope",
    "campaign_id",
    "treatment_n",
    "control_n",
    "treatment_rate",
    "control_rate",
    "abs_lift",
    "abs_lift_ci_low",
    "abs_lift_ci_high",
    "revenue_lift_per_customer",
    "revenue_lift_ci_low",
    "revenue_lift_ci_high",
    "incremental_revenue",
]


@dataclass(frozen=True)
class ProgrammeMeasurement:
    """The whole programme vs the global control over one window, as stored."""

    results: pd.DataFrame  # PROGRAMME_COLUMNS: the programme row, then one per campaign
    series: pd.DataFrame  # date, arm, customers, conversion_rate, revenue_per_customer
    window_start: dt.date
    population_date: dt.date | None  # the membership date the arms were taken from
    notes: list[str]

    @property
    def programme(self) -> pd.Series | None:
        rows = self.results[self.results["scope"] == "programme"]
        return None if rows.empty else rows.iloc[0]


def measure_programme(
    con: duckdb.DuckDBPyConnection, day: dt.date, window_days: int
) -> ProgrammeMeasurement:
    """Programme vs global control over [day - window_days, day); replaces the date's rows of
    activations.programme_results.

    The arms are the customers segmented on the window's first date (or the first segmented
    date after it) and that date's campaigns.global_control members. Outcomes are completed
    orders only: campaign conversion events are attributed to contacts, which the global
    control never gets, so counting them would favour the programme.
    """
    if window_days < 1:
        raise ValueError(f"programme_results window_days must be >= 1, got {window_days}")
    start = day - dt.timedelta(days=window_days)
    notes: list[str] = []
    first = read(
        con,
        "select min(as_of_date) as d from segments.segment_membership"
        " where as_of_date >= $s and as_of_date < $d",
        {"s": start, "d": day},
    )
    population_date = None
    if first is not None and not first.empty and not pd.isna(first.iloc[0, 0]):
        population_date = pd.Timestamp(first.iloc[0, 0]).date()
    empty_ids = pd.DataFrame({"customer_id": pd.Series([], dtype="object")})
    population, holdout = empty_ids, empty_ids
    if population_date is None:
        notes.append(f"no segmented date in [{start}, {day}): nothing to compare")
    else:
        population = con.execute(
            "select customer_id from segments.segment_membership where as_of_date = $p",
            {"p": population_date},
        ).df()
        holdout = read(
            con,
            "select customer_id from campaigns.global_control where as_of_date = $p",
            {"p": population_date},
        )
        if holdout is None or holdout.empty:
            holdout = empty_ids
            notes.append(
                f"no global control on {population_date}: set policies.global_control in the"
                " catalog and rebuild the campaign dates of the window"
            )
    # a change after the date the arms were taken moves customers between them; the row that
    # started the group on or before that date does not
    salts = read(
        con,
        "select as_of_date, salt from campaigns.global_control_salts"
        " where as_of_date > $p and as_of_date < $d order by as_of_date",
        {"p": population_date or start, "d": day},
    )
    if salts is not None and not salts.empty:
        changed = ", ".join(str(pd.Timestamp(d).date()) for d in salts["as_of_date"])
        notes.append(
            f"the global-control salt or share changed inside the window (on {changed}): "
            "customers moved between the arms, so the comparison mixes two groups"
        )
    assignments = read(
        con,
        "select as_of_date, customer_id, campaign_id, is_control from"
        " campaigns.campaign_assignments where as_of_date >= $s and as_of_date < $d",
        {"s": start, "d": day},
    )
    excluded = read(
        con,
        "select as_of_date, customer_id, campaign_id from campaigns.exclusions"
        " where reason = 'global_control' and as_of_date >= $s and as_of_date < $d",
        {"s": start, "d": day},
    )
    orders = con.execute(
        "select customer_id, ordered_at, amount, status from marts.fct_orders"
        " where ordered_at >= $s and ordered_at < $d",
        {"s": start, "d": day},
    ).df()
    empty_a = pd.DataFrame(
        {c: pd.Series([], dtype="object") for c in ("as_of_date", "customer_id", "campaign_id")}
    )
    if assignments is None:
        assignments = empty_a.assign(is_control=pd.Series([], dtype="bool"))
    per = programme_outcomes(
        start,
        day,
        population,
        holdout if len(holdout) else empty_ids.iloc[0:0],
        assignments,
        empty_a if excluded is None else excluded,
        orders,
    )
    if holdout.empty:
        per = per[~per["is_control"]]
    results = programme_results(per, start, day)
    series = programme_series(start, day, population, holdout, orders)
    con.execute("create schema if not exists activations")
    replace_dates(con, [(PROGRAMME_TABLE, results)], day)
    return ProgrammeMeasurement(
        results=results,
        series=series,
        window_start=start,
        population_date=population_date,
        notes=notes,
    )


def programme_chart(series: pd.DataFrame) -> str:
    """Markdown with a PNG: cumulative revenue per customer, programme vs global control."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    for arm, group in series.groupby("arm"):
        ax.plot(pd.to_datetime(group["date"]), group["revenue_per_customer"], label=arm)
    ax.set_ylabel("cumulative revenue per customer")
    ax.legend()
    fig.autofmt_xdate()
    text = png_markdown(fig, "programme vs global control")
    plt.close(fig)
    return text
