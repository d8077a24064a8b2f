"""The day's review (the dry run): outbound messages, exclusions and the suppression list."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from tessera.activations.approval import approval_manifest, fingerprint
from tessera.activations.content import CONTENT_COLUMNS, content_frame, content_from_catalog
from tessera.activations.event_store import provider_events
from tessera.activations.outbound import build_outbound, summarize
from tessera.activations.suppression_sources import SuppressionSources, sent_addresses
from tessera.activations.suppressions import EVENT_COLUMNS, SUPPRESSING_EVENTS
from tessera.warehouse.duckdb_io import replace_dates

SAMPLE_COLUMNS = [
    "campaign_id",
    "channel",
    "customer_id",
    "address",
    "template_id",
    "personalization",
]


@dataclass(frozen=True)
class Review:
    """What ``review_day`` wrote, with the counts and previews a reviewer looks at."""

    messages: pd.DataFrame
    excluded: pd.DataFrame
    suppressed_addresses: int
    fingerprint: str
    #: Messages per campaign and channel.
    counts: pd.DataFrame
    #: Excluded customers per reason.
    reasons: pd.DataFrame
    #: Two messages per campaign and channel.
    samples: pd.DataFrame


def load_content(catalog_path: str, environment: str = "default") -> pd.DataFrame:
    """The catalog's templates per campaign and channel for ``environment``.

    No catalog configured (a bare resource in tests): placeholder content. A configured path
    that is missing is an error (load_catalog names it), never placeholder templates.
    """
    if not catalog_path:
        return pd.DataFrame(columns=CONTENT_COLUMNS)
    from tessera.campaigns.catalog import load_catalog

    catalog = load_catalog(catalog_path)
    return content_frame(content_from_catalog(catalog, environment))


def write_suppressions(con: duckdb.DuckDBPyConnection, suppressions: pd.DataFrame) -> None:
    """Replace activations.suppressions (the current list: one row per channel, address,
    reason and source event)."""
    con.execute("create schema if not exists activations")
    con.register("_suppressions", suppressions)
    try:
        con.execute(
            "create or replace table activations.suppressions as "
            "select channel, address, match_key, reason, source, source_event, customer_id, "
            "cast(since as timestamp) as since from _suppressions"
        )
    finally:
        con.unregister("_suppressions")


def _manual_entries(sources: SuppressionSources) -> pd.DataFrame | None:
    frames = [f for f in (sources.raw_manual, sources.landed_manual()) if f is not None]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else None


def review_day(
    con: duckdb.DuckDBPyConnection,
    day: dt.date,
    landing_dir: Path,
    content: pd.DataFrame,
) -> Review:
    """Build and store ``day``'s outbound messages and exclusions, and refresh the suppression
    list (activations.suppressions), from the day's assignments, customers, features and scores.
    """
    assignments = con.execute(
        "select * from campaigns.campaign_assignments where as_of_date = $d", {"d": day}
    ).df()
    customers = con.execute("select * from marts.dim_customers").df()
    features = con.execute(
        "select customer_id, top_category, top_viewed_category_30d "
        "from marts.customer_features where as_of_date = $d",
        {"d": day},
    ).df()
    scores = con.execute(
        "select customer_id, top_drivers from ml.customer_scores where as_of_date = $d",
        {"d": day},
    ).df()
    # The suppression list as known now (its own table), and the events before D that
    # partition D's review applies; the send-time check applies everything known then.
    sources = SuppressionSources(con, landing_dir)
    suppression_list = sources()
    events_before = provider_events(con, landing_dir, SUPPRESSING_EVENTS, before=day)[EVENT_COLUMNS]
    messages, excluded = build_outbound(
        day,
        assignments,
        customers,
        features,
        scores,
        events_before,
        content,
        manual=_manual_entries(sources),
        sent=sent_addresses(con, events_before["message_id"]),
        customer_records=sources.customers,
    )
    con.execute("create schema if not exists activations")
    write_suppressions(con, suppression_list)
    replace_dates(
        con,
        [
            ("activations.outbound_messages", messages),
            ("activations.outbound_exclusions", excluded),
        ],
        day,
    )
    return Review(
        messages=messages,
        excluded=excluded,
        suppressed_addresses=int(suppression_list["match_key"].nunique()),
        fingerprint=fingerprint(approval_manifest(messages)),
        counts=summarize(messages, excluded),
        reasons=excluded.groupby("reason").size().rename("customers").reset_index(),
        samples=messages.groupby(["campaign_id", "channel"]).head(2)[SAMPLE_COLUMNS],
    )


def reviewed_messages(con: duckdb.DuckDBPyConnection, day: dt.date) -> pd.DataFrame:
    """The stored outbound messages of ``day`` (what approval binds and delivery sends)."""
    return con.execute(
        "select * from activations.outbound_messages where as_of_date = $d", {"d": day}
    ).df()
