"""The journeys' warehouse snapshot: what the rules read, copied in one short read."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from tessera.campaigns.catalog import load_catalog
from tessera.journeys.paths import JourneyPaths
from tessera.journeys.snapshot import read_snapshot, take_snapshot, write_snapshot
from tests.integration.activations.test_assets import D, _warehouse
from tests.integration.journeys.conftest import DEMO


# The daily pipeline writes segment_membership.as_of_date as TIMESTAMP (from pandas).
@pytest.mark.parametrize("date_type", ["date", "timestamp"])
def test_snapshot_of_a_small_warehouse_round_trips(tmp_path, date_type):
    db = tmp_path / "warehouse.duckdb"
    _warehouse(db)
    day = pd.Timestamp(D).date()
    with duckdb.connect(str(db)) as con:
        con.execute("create schema segments")
        con.execute(
            f"""
            create table segments.segment_membership as
            select cast(cast($d as date) as {date_type}) as as_of_date, customer_id,
                   'm1' as micro_segment_id,
                   'clv_gold' as clv_tier,
                   case when customer_id = 'c2' then ['gold_tier', 'test_accounts']
                        else ['gold_tier'] end as target_groups,
                   true as is_email_reachable, false as is_sms_reachable,
                   true as is_direct_mail_reachable, false as is_webhook_reachable
            from marts.dim_customers
            union all
            select cast(cast($d as date) - 1 as {date_type}), customer_id, 'm1', 'clv_low', [], true,
                   false, true, false
            from marts.dim_customers
            """,
            {"d": day},
        )
        catalog = load_catalog(DEMO)
        taken = dt.datetime(2026, 12, 3, 12, 0)
        snap = take_snapshot(con, catalog, tmp_path / "landing", taken)
    assert snap.as_of == day and type(snap.as_of) is dt.date
    customers = snap.customers.set_index("customer_id")
    assert (
        customers.loc["c2", "is_always_excluded"] and not customers.loc["c3", "is_always_excluded"]
    )
    assert list(customers.loc["c3", "prev_target_groups"]) == []
    assert customers.loc["c3", "clv_tier"] == "clv_gold"  # the latest date's bucket
    assert customers.loc["c3", "email"] == "c3@example.com"
    assert "top_category" in customers.columns  # features for conditions
    assert len(snap.daily_history) > 0 and set(snap.daily_history["campaign_id"]) == {"winback"}
    # c1 withdrew e-mail consent in the warehouse: the snapshot's list suppresses the address
    assert "c1@example.com" in set(snap.suppressions["address"])
    paths = JourneyPaths.of(tmp_path / "data")
    write_snapshot(paths, snap)
    again = read_snapshot(paths)
    assert again.as_of == day and again.taken_at == taken
    assert len(again.customers) == len(snap.customers)
