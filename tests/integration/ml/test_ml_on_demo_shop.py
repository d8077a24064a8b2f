"""Models on a real generated shop built by dbt: LightGBM against both baselines, the revenue
level, and the generator's latent truth (customers already gone get higher churn risk).

The shared small shop (400 days) is too short for a held-out slice after a year of seasonal
history, and at 3,000 customers LightGBM's value-ranking edge over the RFM heuristic is within
noise, so this module generates its own: 6,000 customers over two years (~1 s), landed and
built with `dbt run` (~16 s; the dbt tests are the warehouse suite's job)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tessera.ml.pipeline import train_from_warehouse
from tessera.ml.training import TrainConfig, TrainingResult
from tessera.warehouse.landing import load_landing

sys.path.insert(0, str(Path(__file__).parents[1] / "dbt"))
from dbt_harness import Warehouse, failures  # noqa: E402

pytestmark = pytest.mark.integration

END = dt.date(2026, 6, 1)
CUTOFF = END  # evaluation slice: the newest snapshot with a full 90-day outcome, 2026-03-02
#: 6,000 customers give ~5,200 on the evaluation date with ~1,100 buyers and heavy-tailed
#: baskets: the actual 90-day total itself moves by several percent between seeds, and the
#: seasonal index is measured on a small cohort. Measured errors on this shop were 0.6% (this
#: cut-off) and 7% (cut-off 2026-03-02); 15% is the honest bound at this size (the 20k demo
#: shop meets 5% on two slices, see docs/models.md).
TOTAL_TOLERANCE_PCT = 15.0


@pytest.fixture(scope="module")
def demo_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Warehouse, Path]:
    from tessera.demo.generator import generate_shop

    root = tmp_path_factory.mktemp("ml-demo-shop")
    generate_shop(
        root / "landing", customers=6000, seed=7, start=END - dt.timedelta(days=730), end=END
    )
    warehouse = Warehouse(data_dir=root / "data", target_dir=root / "target")
    warehouse.data_dir.mkdir()
    with duckdb.connect(str(warehouse.path)) as con:
        load_landing(con, root / "landing")
    result = warehouse.dbt("run", vars={"as_of": END.isoformat(), "snapshot_count": 52})
    assert failures(result) == []
    return warehouse, root / "ground_truth" / "customers.parquet"


@pytest.fixture(scope="module")
def trained(demo_shop: tuple[Warehouse, Path]) -> TrainingResult:
    warehouse, _ = demo_shop
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        result, _ = train_from_warehouse(con, CUTOFF, TrainConfig())
    return result


def test_a_learnt_model_wins_and_beats_both_baselines_on_the_demo_shop(
    trained: TrainingResult,
) -> None:
    m = trained.metrics
    assert not trained.plan.overlapping_labels
    assert trained.plan.window == 90, "two years of snapshots: the horizon itself is learnt"
    churn, value = trained.winners["churn"], trained.winners["value"]
    assert churn not in ("rfm", "bgnbd") and value not in ("rfm", "bgnbd"), trained.winners
    for baseline in ("rfm", "bgnbd"):
        assert m.loc[churn, "auc"] > m.loc[baseline, "auc"], m
        assert m.loc[value, "top_decile_share"] > m.loc[baseline, "top_decile_share"], m
        # The plain LightGBM, the demo shop's model so far, still beats them too.
        assert m.loc["lightgbm", "auc"] > m.loc[baseline, "auc"], m
        assert m.loc["lightgbm", "spearman"] > m.loc[baseline, "spearman"], m
    assert trained.passed


def test_predicted_total_revenue_is_near_the_actual_total(trained: TrainingResult) -> None:
    assert trained.value.seasonal_level() is not None, "two years of orders: the season is used"
    error = trained.metrics.loc[trained.winners["value"], "total_error_pct"]
    assert abs(error) <= TOTAL_TOLERANCE_PCT, trained.metrics


def test_churn_probabilities_are_calibrated_on_average(trained: TrainingResult) -> None:
    m = trained.metrics.loc[trained.winners["churn"]]
    assert abs(m["mean_predicted"] - m["observed_rate"]) < 0.03


def test_customers_already_gone_get_higher_churn_risk_than_living_ones(
    demo_shop: tuple[Warehouse, Path], trained: TrainingResult
) -> None:
    _, truth_path = demo_shop
    truth = pd.read_parquet(truth_path, columns=["customer_id", "churn_at"])
    scored = trained.predictions.merge(truth, on="customer_id", how="inner")
    as_of = pd.Timestamp(trained.plan.evaluation[0], tz="UTC")
    gone = scored["churn_at"].notna() & (scored["churn_at"] < as_of)
    assert gone.sum() > 100 and (~gone).sum() > 100
    column = f"churn_{trained.winners['churn']}"
    risk_gone = scored.loc[gone, column].mean()
    risk_alive = scored.loc[~gone, column].mean()
    assert risk_gone > risk_alive + 0.1, (risk_gone, risk_alive)
