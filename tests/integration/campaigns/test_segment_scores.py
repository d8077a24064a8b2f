"""Segments and the scores: a warehouse never scored is a named state; an unscored date is an error."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from tessera.orchestration.defs.segments.assets import segments
from tests.integration.campaigns.test_matrix_assets import START, run, warehouse  # noqa: F401

pytestmark = pytest.mark.integration


def _membership_metadata(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["segments", "segment_membership"])
    ]
    return event.materialization.metadata


def test_a_warehouse_never_scored_names_the_catalog_parts_built_on_scores(warehouse):  # noqa: F811
    result = run(warehouse, START, assets=[segments])
    assert result.success
    parts = _membership_metadata(result)["unavailable_catalog_parts"].value
    assert parts["sources_not_provided"] == ["ml.customer_scores"]
    assert {"clv_tier", "churn_risk"} <= set(parts["dimensions"])
    assert "ski_churners" in parts["target_groups"]
    assert "all_customers" not in parts["target_groups"]
    with warehouse.get_connection() as con:
        buckets = con.execute(
            "select distinct churn_risk from segments.segment_membership"
        ).fetchall()
    assert buckets == [("churn_unscored",)]


def test_a_date_without_scores_in_a_scored_warehouse_is_an_error_naming_the_table(warehouse):  # noqa: F811
    later = START + dt.timedelta(days=1)
    with warehouse.get_connection() as con:
        con.execute("create schema ml")
        scores = pd.DataFrame(
            {
                "as_of_date": [START],
                "customer_id": ["c0000"],
                "churn_probability": [0.7],
                "predicted_value_90d": [10.0],
                "clv_12m": [40.0],
            }
        )
        con.register("s", scores)
        con.execute("create table ml.customer_scores as select * from s")
    assert run(warehouse, START, assets=[segments]).success
    refused = run(warehouse, later, assets=[segments])
    assert not refused.success
    (failure,) = [e for e in refused.all_events if e.is_step_failure]
    error = failure.step_failure_data.error
    message = error.cause.message if error.cause else error.message
    assert f"ml.customer_scores has no scores for {later}" in message
    assert "materialize ml/customer_scores" in message
    with warehouse.get_connection() as con:
        dates = con.execute(
            "select distinct cast(as_of_date as date) from segments.segment_membership"
        ).fetchall()
        scored = con.execute(
            "select churn_risk from segments.segment_membership where customer_id = 'c0000'"
        ).fetchall()
    assert dates == [(START,)]  # nothing written for the refused date
    assert scored == [("churn_high",)]
