"""An asset whose upstream table is missing fails, naming the table and the asset that builds it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from tessera.orchestration.defs.campaigns.assets import campaign_matrix
from tessera.orchestration.defs.campaigns.resources import CampaignCatalog
from tessera.orchestration.defs.upstream import MissingUpstreamTableError, require_tables
from tessera.settings import DEMO_CATALOG


def test_an_asset_run_before_its_upstream_names_the_missing_table_and_its_asset(
    tmp_path: Path,
) -> None:
    result = dg.materialize(
        [campaign_matrix],
        resources={
            "warehouse": DuckDBResource(database=str(tmp_path / "w.duckdb")),
            "campaign_catalog": CampaignCatalog(path=str(DEMO_CATALOG)),
        },
        partition_key="2026-06-01",
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.cause.message
    assert "MissingUpstreamTableError" in message
    assert "campaigns/campaign_matrix reads campaigns.campaign_assignments" in message
    assert "built by the asset campaigns/campaign_assignments" in message
    assert "materialize it first" in message


def test_existing_tables_and_views_pass_and_every_missing_one_is_named() -> None:
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("create table marts.fct_orders (order_id varchar)")
    con.execute("create view marts.dim_customers as select 1 as customer_id")
    needed_by = dg.AssetKey(["ml", "customer_scores"])
    require_tables(con, needed_by, [dg.AssetKey(["marts", "fct_orders"]),
                                    dg.AssetKey(["marts", "dim_customers"])])  # fmt: skip
    with pytest.raises(MissingUpstreamTableError) as error:
        require_tables(
            con,
            needed_by,
            [dg.AssetKey(["marts", "fct_orders"]), dg.AssetKey(["marts", "customer_features"]),
             dg.AssetKey(["files", "models"])],
        )  # fmt: skip
    text = str(error.value)
    assert "marts.customer_features (built by the asset marts/customer_features)" in text
    assert "fct_orders" not in text
    assert text.startswith("ml/customer_scores reads ")
