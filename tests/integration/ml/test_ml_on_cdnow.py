"""The models on real, public transactions: CDNOW, as shipped in the `lifetimes` wheel.

CDNOW (Fader & Hardie's data set of the CDNOW online shop's first-quarter-1997 cohort: 23,570
customers, 69,659 purchases from 1997-01 to 1998-06) is the classic benchmark of BG/NBD. The
file is read from the installed package's folder (a dev dependency); lifetimes' code is never
imported. The classic split: 39 weeks of history (as-of 1997-10-01), outcome over the next
273 days, a horizon longer than any label window that history allows.
"""

from __future__ import annotations

import importlib.util
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from tessera.ml.training import TrainConfig
from tessera.ml.transactions import PredictResult, predict_file

pytestmark = pytest.mark.integration

AS_OF = date(1997, 10, 1)
UNTIL = date(1998, 7, 1)
HORIZON = (UNTIL - AS_OF).days  # 273


def cdnow_path() -> Path:
    """CDNOW_master.txt inside the installed lifetimes package (found, not imported)."""
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("lifetimes (dev dependency, ships the CDNOW file) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "CDNOW_master.txt"
    if not path.exists():
        pytest.skip(f"{path} is missing from the lifetimes package")
    return path


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory: pytest.TempPathFactory) -> PredictResult:
    raw = pd.read_csv(cdnow_path(), sep=r"\s+", dtype={"customer_id": str, "date": str})
    frame = pd.DataFrame(
        {
            "customer_id": raw["customer_id"],
            "ordered_at": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "amount": raw["dollar_value"],
        }
    )
    path = tmp_path_factory.mktemp("cdnow") / "cdnow.parquet"
    frame.to_parquet(path, index=False)
    # Fewer rows per fit than the default keep the module well under a minute.
    config = TrainConfig(max_train_rows=100_000)
    return predict_file(path, AS_OF, HORIZON, evaluate_until=UNTIL, config=config)


def test_a_horizon_longer_than_the_history_is_learnt_and_named(cdnow: PredictResult) -> None:
    plan = cdnow.training.plan
    assert plan.horizon == 273 and plan.window < 273
    # The final fit learns the longer window from every date with a complete one, up to the
    # newest; the held-out check used half-length labels on the same dates.
    assert plan.window > plan.evaluation_window
    assert (AS_OF - plan.final[-1]).days < plan.window + 7
    assert set(plan.train + plan.valid) <= set(plan.final)
    assert "carried to the 273-day horizon" in plan.describe()
    assert len(cdnow.scores) == 23_570


def test_the_scores_beat_bgnbd_and_plain_lightgbm_on_the_real_outcome(
    cdnow: PredictResult,
) -> None:
    m, winners = cdnow.evaluation, cdnow.training.winners
    assert winners["churn"] not in ("bgnbd", "rfm"), cdnow.training.metrics
    scores = m.loc["scores"]
    for rival in ("bgnbd", "lightgbm"):
        assert scores["auc"] > m.loc[rival, "auc"], m
    # Value: top-10% capture is within a few thousandths across candidates here (the held-out
    # slice picks BG/NBD by 0.003); the scores never fall below BG/NBD's by more than noise
    # and beat the plain weekly-snapshot LightGBM.
    assert scores["top_decile_share"] >= m.loc["bgnbd", "top_decile_share"] - 0.005, m
    assert scores["top_decile_share"] > m.loc["lightgbm", "top_decile_share"], m


def test_total_revenue_and_churn_level_are_close_to_the_actual_outcome(
    cdnow: PredictResult,
) -> None:
    scores = cdnow.evaluation.loc["scores"]
    assert abs(scores["total_error_pct"]) < 15, cdnow.evaluation
    assert abs(scores["mean_predicted"] - scores["observed_rate"]) < 0.03, cdnow.evaluation


def test_nine_months_of_history_say_no_peak_is_learnt_and_how_steady_the_level_was(
    cdnow: PredictResult,
) -> None:
    training = cdnow.training
    (note,) = [n for n in training.notes if n.startswith("no prior season")]
    check = training.fits["final"]["level_check"]
    # The anchor is BG/NBD x GG's error on the newest complete window; over the 22 labelled
    # dates it moved, and the note says by how much (the cohort was still being acquired in
    # its first months, so the replayed anchor runs low there).
    assert check["window_days"] == training.plan.window
    assert check["dates"] == len(training.plan.final)
    assert check["ratio_min"] <= check["ratio_newest"] <= check["ratio_max"]
    assert check["ratio_max"] - check["ratio_min"] > 0.1
    assert check["replayed"] >= 5
    assert check["replayed_error_pct_min"] <= check["replayed_error_pct_median"]
    assert f"over the history's {check['dates']} labelled dates" in note
    assert f"actual/predicted {check['ratio_newest']:.2f}" in note
