"""The ml assets on a small warehouse: first daily run trains from an empty registry, reruns
replace the partition, a later date reuses the champion, the report and checks materialize."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from tessera.ml.features import transaction_features
from tessera.ml.simulation import simulate_transactions
from tessera.orchestration.defs.ml.assets import (
    customer_drivers,
    customer_scores,
    model_evaluation,
    models,
)
from tessera.orchestration.defs.ml.checks import (
    customer_scores_valid,
    lightgbm_beats_baselines,
    models_quality_floor,
)
from tessera.orchestration.defs.resources import DataStorage

pytestmark = pytest.mark.integration

D1, D2 = date(2025, 10, 6), date(2025, 10, 7)
FAST = {
    "horizon_days": 60,
    "train_dates": 4,
    "valid_dates": 1,
    "num_boost_round": 40,
    "min_data_in_leaf": 20,
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("shop")
    tx, _ = simulate_transactions(2000, seed=3, start=date(2024, 1, 1), end=D2 + timedelta(days=30))
    tx["order_id"] = [f"O{i}" for i in range(len(tx))]
    tx["status"] = "completed"
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    con.execute("create schema marts")
    con.register("tx", tx)
    con.execute(
        "create table marts.fct_orders as select *, cast(ordered_at as date) as order_date from tx"
    )
    snaps = [D1 - timedelta(days=7 * k) for k in range(40, 0, -1)]
    con.register("snap", transaction_features(con, "tx", snaps))
    con.execute("create table marts.customer_feature_snapshots as select * from snap")
    con.register("daily", transaction_features(con, "tx", [D1, D2]))
    con.execute("create table marts.customer_features as select * from daily")
    con.close()
    return {
        "warehouse": DuckDBResource(database=str(root / "warehouse.duckdb")),
        "storage": DataStorage(data_dir=str(root)),
    }


def _config(**extra):
    return dg.RunConfig(ops={customer_scores.op.name: {"config": {**FAST, **extra}}})


def test_first_daily_run_trains_from_empty_registry_then_reuses_it(shop):
    first = dg.materialize(
        [customer_scores, customer_scores_valid],
        partition_key=D1.isoformat(),
        resources=shop,
        run_config=_config(),
    )
    assert first.success
    meta = first.get_asset_materialization_events()[0].materialization.metadata
    assert meta["trained_this_run"].value is True
    again = dg.materialize(
        [customer_scores], partition_key=D1.isoformat(), resources=shop, run_config=_config()
    )
    later = dg.materialize(
        [customer_scores], partition_key=D2.isoformat(), resources=shop, run_config=_config()
    )
    assert (
        later.get_asset_materialization_events()[0]
        .materialization.metadata["trained_this_run"]
        .value
        is False
    )
    assert again.success and later.success
    with shop["warehouse"].get_connection() as con:
        counts = dict(
            con.execute("select as_of_date, count(*) from ml.customer_scores group by 1").fetchall()
        )
        n_features = con.execute(
            "select count(*) from marts.customer_features where as_of_date = $d", {"d": D1}
        ).fetchall()[0][0]
    assert counts[D1] == n_features  # the rerun replaced, not appended
    assert set(counts) == {D1, D2}


def test_models_report_and_checks_materialize(shop):
    result = dg.materialize(
        [models, model_evaluation, models_quality_floor, lightgbm_beats_baselines],
        resources=shop,
        run_config=dg.RunConfig(
            ops={models.op.name: {"config": {**FAST, "as_of": D2.isoformat()}}}
        ),
        raise_on_error=False,
    )
    assert result.success
    report = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.path == ["reports", "model_evaluation"]
    ][0]
    md = report.materialization.metadata
    assert "data:image/png;base64" in md["calibration_curve"].value
    assert "LightGBM" in md["metrics"].value
    checks = {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["models_quality_floor"] is True
    assert "lightgbm_beats_baselines" in checks


def test_drivers_exist_for_every_assigned_customer_and_importance_is_reported(shop):
    day = D1.isoformat()
    scored = dg.materialize(
        [customer_scores], partition_key=day, resources=shop, run_config=_config()
    )
    meta = scored.get_asset_materialization_events()[0].materialization.metadata
    assert "gain_share" in meta["churn_feature_importance"].value
    with shop["warehouse"].get_connection() as con:
        assert (
            con.execute(
                "select count(top_drivers) from ml.customer_scores where as_of_date = $d", {"d": D1}
            ).fetchall()[0][0]
            == 0
        )  # scoring runs no TreeSHAP
        con.execute("create schema if not exists campaigns")
        con.execute(
            """create or replace table campaigns.campaign_assignments as
            select as_of_date, customer_id, 'c1' as campaign_id,
                   row_number() over (order by customer_id) % 2 = 0 as is_control
            from ml.customer_scores where as_of_date = $d
            order by customer_id limit 37""",
            {"d": D1},
        )
    run = dg.materialize(
        [customer_drivers],
        partition_key=day,
        resources=shop,
        run_config=dg.RunConfig(ops={customer_drivers.op.name: {"config": FAST}}),
    )
    drivers_meta = run.get_asset_materialization_events()[0].materialization.metadata
    assert drivers_meta["dagster/row_count"].value == 37
    assert "| feature | customers | share |" in drivers_meta["leading_driver"].value
    with shop["warehouse"].get_connection() as con:
        missing, extra = con.execute(
            """select
                count(*) filter (where a.customer_id is not null and s.top_drivers is null),
                count(*) filter (where a.customer_id is null and s.top_drivers is not null)
            from ml.customer_scores s
            left join campaigns.campaign_assignments a using (as_of_date, customer_id)
            where s.as_of_date = $d""",
            {"d": D1},
        ).fetchall()[0]
        first = con.execute(
            "select top_drivers from ml.customer_scores s join campaigns.campaign_assignments a"
            " using (as_of_date, customer_id) limit 1"
        ).fetchall()[0][0]
    assert missing == 0 and extra == 0
    assert '"feature"' in first
