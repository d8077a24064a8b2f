"""A small warehouse of the tables the review app reads (two dates, two campaigns), and a
process that holds its write lock as a daily run does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

D = dt.date(2026, 6, 1)


def _messages(day: dt.date) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "as_of_date": pd.Timestamp(day),
            "message_key": [f"k{day:%d}{i}" for i in range(4)],
            "campaign_id": ["welcome", "welcome", "deals", "deals"],
            "customer_id": ["C1", "C2", "C1", "C3"],
            "channel": "email",
            "provider": "sendgrid",
            "micro_segment_id": "week1|heavy",
            "priority": 10,
            "duration_days": 3,
            "address": ["c1@x.example", "c2@x.example", "c1@x.example", "c3@x.example"],
            "template_id": "d-" + "a" * 32,
            "personalization": ['{"text": "Hi C1"}', '{"text": "Hi C2"}', "{}", "{}"],
        }
    )


def build_warehouse(path: Path) -> Path:
    """Write the review tables for D-1 and D into a DuckDB file at ``path``."""
    con = duckdb.connect(str(path))
    try:
        for schema in ("campaigns", "activations", "ml", "marts"):
            con.execute(f"create schema {schema}")
        matrix = pd.DataFrame(
            {
                "as_of_date": [D - dt.timedelta(days=1), D, D, D],
                "micro_segment_id": ["week1|heavy", "week1|heavy", "week1|light", "veteran|heavy"],
                "campaign_id": ["welcome", "welcome", "deals", "deals"],
                "customer_count": [5, 6, 4, 3],
                "control_count": [1, 1, 0, 0],
            }
        )
        plan = pd.DataFrame(
            {
                "plan_date": [D, D],
                "as_of_date": [D + dt.timedelta(days=1), D + dt.timedelta(days=2)],
                "micro_segment_id": "week1|heavy",
                "campaign_id": ["welcome", "deals"],
                "customer_count": [7, 2],
                "control_count": [1, 0],
            }
        )
        exclusions = pd.DataFrame(
            {
                "as_of_date": [D, D, D],
                "customer_id": ["C4", "C5", "C1"],
                "campaign_id": ["deals", "deals", "welcome"],
                "reason": ["capacity", "capacity", "lower_priority"],
                "taken_by": [None, None, "deals"],
            }
        )
        runs = pd.DataFrame({"as_of_date": [D - dt.timedelta(days=3), D], "assignments": [1, 1]})
        scores = pd.DataFrame(
            {
                "as_of_date": [D, D],
                "customer_id": ["C1", "C2"],
                "churn_probability": [0.8, 0.1],
                "predicted_value_90d": [10.0, 80.0],
                "clv_12m": [20.0, 150.0],
                "top_drivers": [
                    '[{"feature": "tenure_days", "contribution": 0.5}]',
                    '[{"feature": "tenure_days", "contribution": 0.3},'
                    ' {"feature": "events_30d", "contribution": 0.2}]',
                ],
            }
        )
        assignments = pd.DataFrame(
            {
                "as_of_date": [D, D],
                "customer_id": ["C1", "C2"],
                "campaign_id": ["welcome", "welcome"],
                "is_control": [False, False],
                "locked_until": [D + dt.timedelta(days=3)] * 2,
            }
        )
        for name, frame in {
            "campaigns.campaign_matrix": matrix,
            "campaigns.campaign_plan": plan,
            "campaigns.exclusions": exclusions,
            "campaigns.matrix_runs": runs,
            "campaigns.campaign_assignments": assignments,
            "ml.customer_scores": scores,
            "activations.outbound_messages": _messages(D),
        }.items():
            con.register("_f", frame)
            con.execute(f"create table {name} as select * from _f")
            con.unregister("_f")
    finally:
        con.close()
    return path


#: A process that opens the warehouse for writing and keeps it until told to stop.
HOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
sys.stdin.readline()
"""
