"""Per trigger and step: entries, exits and why, messages; conversions against the control group.

The lift, its intervals and the revenue per customer are the daily campaigns' measurement
(``tessera.activations.results.campaign_results``): each entry is a cohort of its trigger
(the entry's day, the trigger's campaign id), measured on the ``order`` events the collector
received within ``window_days`` of entry (revenue from ``properties.value``).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from tessera.activations.results import campaign_results
from tessera.journeys.store import SCHEMA

FUNNEL_COLUMNS = [
    "trigger_id",
    "step_id",
    "step_index",
    "due",
    "sent",
    "control",
    "skipped",
    "exited",
    "not_sent",
    "pending",
    "skip_reasons",
    "exit_reasons",
]


def trigger_funnel(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per trigger and step: how many were due, sent, control, skipped (and why),
    exited before the message (and why), suppressed/failed, still pending."""
    return con.execute(
        f"""
        select trigger_id, step_id, step_index,
               count(*) filter (where status <> 'pending' or message_key is not null) as due,
               count(*) filter (where status = 'sent') as sent,
               count(*) filter (where status = 'control') as control,
               count(*) filter (where status = 'skipped') as skipped,
               count(*) filter (where status = 'exited') as exited,
               count(*) filter (where status in ('suppressed', 'failed', 'unknown')) as not_sent,
               count(*) filter (where status = 'pending') as pending,
               coalesce(string_agg(distinct reason, ', ' order by reason)
                   filter (where status = 'skipped'), '') as skip_reasons,
               coalesce(string_agg(distinct reason, ', ' order by reason)
                   filter (where status = 'exited'), '') as exit_reasons
        from {SCHEMA}.steps
        group by all order by trigger_id, step_index
        """
    ).df()[FUNNEL_COLUMNS]


def trigger_results(
    con: duckdb.DuckDBPyConnection, as_of: dt.date, window_days: int = 7
) -> pd.DataFrame:
    """Per trigger: conversions and revenue of treated vs control entries before ``as_of``."""
    entries = con.execute(
        f"""
        select 'trigger_' || trigger_id as campaign_id, cast(entered_at as date) as as_of_date,
               customer_id, is_control, {int(window_days)} as duration_days
        from {SCHEMA}.entries
        """
    ).df()
    orders = con.execute(
        f"""
        select event_id as order_id, customer_id, occurred_at as ordered_at,
               coalesce(try_cast(json_extract_string(properties, '$.value') as double), 0)
                   as amount,
               'completed' as status
        from {SCHEMA}.events where event_type = 'order'
        """
    ).df()
    conversions = pd.DataFrame(
        columns=["customer_id", "campaign_id", "occurred_at", "revenue"], dtype="object"
    )
    return campaign_results(as_of, entries, orders, conversions)
