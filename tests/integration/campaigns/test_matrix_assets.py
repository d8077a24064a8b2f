"""The segments and campaign assets on a small warehouse: dates in order, checks, gap refusal."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
from dagster_duckdb import DuckDBResource

from tessera.orchestration.defs.campaigns.assets import (
    campaign_assignments,
    campaign_matrix,
    campaign_plan,
    campaign_plan_vs_actual,
)
from tessera.orchestration.defs.campaigns.resources import CampaignCatalog
from tessera.orchestration.defs.segments.assets import segments

pytestmark = pytest.mark.integration

CATALOG = Path(__file__).resolve().parents[3] / "src" / "tessera" / "campaigns" / "catalog.yml"
START = dt.date(2025, 3, 1)
N = 400


def features(day: dt.date, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "as_of_date": day,
            "customer_id": [f"c{i:04d}" for i in range(N)],
            "tenure_days": rng.integers(0, 900, N),
            "events_30d": rng.integers(0, 30, N),
            "revenue_365d": rng.gamma(1.0, 300, N),
            "revenue_total": rng.gamma(1.0, 600, N),
            "orders_365d": rng.integers(0, 6, N),
            "orders_total": rng.integers(0, 10, N),
            "top_category": rng.choice(["ski", "handbags", "home"], N),
            "top_viewed_category_30d": rng.choice(["ski", "handbags"], N),
            "opens_90d": rng.integers(0, 5, N),
            "items_ski": rng.integers(0, 4, N),
            "items_outdoor": rng.integers(0, 2, N),
            "has_ever_responded": rng.random(N) < 0.5,
            "days_since_last_order": rng.integers(0, 200, N),
            "mean_interpurchase_days": rng.integers(5, 60, N),
            "is_cart_abandoned_24h": rng.random(N) < 0.2,
            "is_spam_reported": rng.random(N) < 0.03,
            "is_unsubscribed": False,
            "is_bounced": False,
            "is_email_opt_in": rng.random(N) < 0.8,
            "is_sms_opt_in": rng.random(N) < 0.5,
            "days_since_last_app_open": rng.integers(0, 30, N),
        }
    )


@pytest.fixture
def warehouse(tmp_path) -> DuckDBResource:
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    frame = pd.concat([features(START + dt.timedelta(days=d), d) for d in range(4)])
    con.register("f", frame)
    con.execute("create table marts.customer_features as select * from f")
    dims = pd.DataFrame(
        {
            "customer_id": [f"c{i:04d}" for i in range(N)],
            "email": [f"p{i}@shop.test" for i in range(N)],
            "is_email_valid": True,
            "is_phone_valid": True,
        }
    )
    con.register("d", dims)
    con.execute("create table marts.dim_customers as select * from d")
    con.close()
    return DuckDBResource(database=str(path))


def run(warehouse: DuckDBResource, day: dt.date, assets=None, config=None):
    return dg.materialize(
        assets
        or [
            segments,
            campaign_assignments,
            campaign_matrix,
            campaign_plan,
            campaign_plan_vs_actual,
        ],
        resources={"warehouse": warehouse, "campaign_catalog": CampaignCatalog(path=str(CATALOG))},
        partition_key=day.isoformat(),
        run_config=config,
        raise_on_error=False,
        selection=None,
    )


def test_dates_in_order_build_matrix_with_checks_passing_and_locks_applied(warehouse):
    for d in range(3):
        result = run(warehouse, START + dt.timedelta(days=d))
        assert result.success
        checks = result.get_asset_check_evaluations()
        assert checks and all(c.passed for c in checks)
    with warehouse.get_connection() as con:
        per_date = con.execute(
            "select as_of_date, count(*) from campaigns.campaign_assignments group by 1 order by 1"
        ).fetchall()
        reasons = dict(
            con.execute("select reason, count(*) from campaigns.exclusions group by 1").fetchall()
        )
        matrix_total = con.execute(
            "select sum(customer_count) from campaigns.campaign_matrix"
        ).fetchall()[0][0]
        plan_days = con.execute(
            "select count(distinct as_of_date) from campaigns.campaign_plan"
            " where plan_date = date '2025-03-01'"
        ).fetchall()[0][0]
        compared = con.execute("select count(*) from campaigns.plan_vs_actual").fetchall()[0][0]
    assert len(per_date) == 3
    assert matrix_total == sum(n for _, n in per_date)
    assert reasons.get("duration_period", 0) > 0 and reasons.get("lower_priority", 0) > 0
    assert reasons.get("always_exclude", 0) > 0
    assert plan_days == 14 and compared > 0


def test_a_missing_previous_date_is_refused_unless_allowed(warehouse):
    assert run(warehouse, START).success
    gap_day = START + dt.timedelta(days=2)
    refused = run(warehouse, gap_day, assets=[segments, campaign_assignments])
    assert not refused.success
    failure = [e for e in refused.all_events if e.is_step_failure]
    error = failure[0].event_specific_data.error
    assert "was never built" in (error.cause.message if error.cause else error.message)
    allowed = run(
        warehouse,
        gap_day,
        assets=[segments, campaign_assignments],
        config={"ops": {"campaign_assignments": {"config": {"allow_gap": True}}}},
    )
    assert allowed.success
