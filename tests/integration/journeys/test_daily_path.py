"""The daily campaign_assignments asset counts journey locks (the shared history)."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd

from tessera.activations.events import write_atomic_parquet
from tessera.orchestration.defs.campaigns.assets import campaign_assignments
from tessera.orchestration.defs.campaigns.resources import CampaignCatalog
from tessera.orchestration.defs.segments.assets import segments
from tests.integration.campaigns.test_matrix_assets import CATALOG, START, N
from tests.integration.campaigns.test_matrix_assets import warehouse as warehouse  # noqa: F401


def _assign(warehouse, contacts_path: str) -> pd.DataFrame:
    result = dg.materialize(
        [segments, campaign_assignments],
        resources={
            "warehouse": warehouse,
            "campaign_catalog": CampaignCatalog(
                path=str(CATALOG), journey_contacts_path=contacts_path
            ),
        },
        partition_key=START.isoformat(),
    )
    assert result.success
    with warehouse.get_connection() as con:
        return con.execute("select * from campaigns.exclusions").df()


def test_customers_inside_a_journey_are_locked_from_daily_campaigns(warehouse, tmp_path):  # noqa: F811
    locked = [f"c{i:04d}" for i in range(0, N, 2)]
    contacts = pd.DataFrame(
        {
            "as_of_date": START - dt.timedelta(days=1),
            "customer_id": locked,
            "campaign_id": "trigger_cart_abandonment",
            "channel": None,
            "is_control": True,
            "locked_until": START + dt.timedelta(days=1),
        }
    )
    write_atomic_parquet(contacts, tmp_path / "journeys", "contacts.parquet")
    exclusions = _assign(warehouse, str(tmp_path / "journeys" / "contacts.parquet"))
    held = exclusions[exclusions["reason"] == "duration_period"]
    assert set(held["taken_by"]) == {"trigger_cart_abandonment"}
    assert set(held["customer_id"]) <= set(locked) and len(held) > 0
    with warehouse.get_connection() as con:
        assigned = con.execute(
            "select customer_id, campaign_id from campaigns.campaign_assignments"
        ).df()
    # only campaigns that ignore locks (the service cart reminder) reach a locked customer
    inside = assigned[assigned["customer_id"].isin(locked)]
    assert set(inside["campaign_id"]) <= {"cart_reminder"}


def test_without_a_contacts_file_nothing_changes(warehouse, tmp_path):  # noqa: F811
    exclusions = _assign(warehouse, str(tmp_path / "missing.parquet"))
    assert not (exclusions["taken_by"].fillna("").str.startswith("trigger_")).any()
