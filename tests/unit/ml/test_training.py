"""Training sets are point-in-time; models are deterministic and calibrated; drivers are JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from tessera.ml.errors import NotEnoughHistoryError
from tessera.ml.features import FeatureSpec, transaction_features
from tessera.ml.scoring import (
    global_importance,
    score_customers,
    score_drivers,
    top_drivers_json,
)
from tessera.ml.training import clv_12m, plan_slices, train_models


def _corrupt_from(tx: pd.DataFrame, cut: date) -> pd.DataFrame:
    """Scramble every transaction at or after `cut` and add fake ones after it."""
    late = tx["ordered_at"] >= pd.Timestamp(cut)
    out = tx.copy()
    out.loc[late, "amount"] = out.loc[late, "amount"] * 100 + 1
    out.loc[late, "customer_id"] = out.loc[late, "customer_id"].iloc[::-1].to_numpy()
    fake = pd.DataFrame(
        {
            "customer_id": tx["customer_id"].iloc[:500],
            "ordered_at": pd.Timestamp(cut),
            "amount": 999.0,
        }
    )
    return pd.concat([out, fake], ignore_index=True)


def test_features_at_t_ignore_all_data_at_or_after_t(transactions):
    t = date(2023, 3, 6)
    con = duckdb.connect()
    con.register("clean", transactions)
    con.register("dirty", _corrupt_from(transactions, t))
    clean = transaction_features(con, "clean", [t])
    dirty = transaction_features(con, "dirty", [t])
    pd.testing.assert_frame_equal(clean, dirty)


def test_training_set_for_as_of_unchanged_when_data_after_it_is_corrupted(
    transactions, small_config, build_training, as_of
):
    clean, _ = build_training(transactions, small_config)
    dirty, _ = build_training(_corrupt_from(transactions, as_of), small_config)
    pd.testing.assert_frame_equal(clean, dirty)
    # And no snapshot's label window reaches the cut-off.
    assert max(clean["as_of_date"]) + timedelta(days=small_config.horizon_days) <= as_of


def test_labels_count_only_the_horizon_after_each_snapshot(
    transactions, small_config, build_training
):
    training_set, _ = build_training(transactions, small_config)
    row = training_set.iloc[0]
    start = pd.Timestamp(row["as_of_date"])
    mine = transactions[transactions["customer_id"] == row["customer_id"]]
    window = mine[
        (mine["ordered_at"] >= start)
        & (mine["ordered_at"] < start + pd.Timedelta(days=small_config.horizon_days))
    ]
    assert row["label_value"] == pytest.approx(window["amount"].sum())
    assert row["label_churned"] == int(window.empty)


def test_plan_keeps_evaluation_labels_untouched_by_training():
    dates = [date(2023, 1, 2) + timedelta(days=7 * k) for k in range(52)]
    plan = plan_slices(dates, date(2024, 1, 1), 90, train_dates=4, valid_dates=2)
    assert not plan.overlapping_labels
    assert max(plan.train + plan.valid) + timedelta(days=90) <= min(plan.evaluation)
    assert max(plan.evaluation) + timedelta(days=90) <= date(2024, 1, 1)


def test_plan_without_enough_history_says_so():
    with pytest.raises(NotEnoughHistoryError, match="not enough history"):
        plan_slices([date(2023, 12, 1)], date(2024, 1, 1), 90)


def test_same_seed_gives_identical_predictions(training, small_config):
    training_set, plan, first = training
    second = train_models(training_set, plan, small_config)
    np.testing.assert_array_equal(
        first.predictions["churn_lightgbm"], second.predictions["churn_lightgbm"]
    )
    np.testing.assert_array_equal(
        first.predictions["value_lightgbm"], second.predictions["value_lightgbm"]
    )


def test_churn_probabilities_are_calibrated_on_the_held_out_slice(training):
    _, _, result = training
    m = result.metrics.loc["lightgbm"]
    assert abs(m["mean_predicted"] - m["observed_rate"]) < 0.05
    assert m["calibration_error"] < 0.08
    assert m["auc"] > 0.7


def test_value_model_total_is_close_to_actual_and_ranks(training):
    _, _, result = training
    m = result.metrics.loc["lightgbm"]
    assert abs(m["total_error_pct"]) < 15
    assert m["spearman"] > 0.3
    # Every model is compared on the same rows.
    assert set(result.metrics.index) == {
        "blend",
        "lightgbm_bgnbd",
        "lightgbm",
        "ensemble",
        "rfm",
        "bgnbd",
    }


def test_feature_list_is_data_driven_and_categories_are_stable():
    frame = pd.DataFrame(
        {
            "as_of_date": [date(2024, 1, 1)] * 3,
            "customer_id": ["a", "b", "c"],
            "_loaded_at": ["x", "y", "z"],
            "country": ["DE", "FR", None],
            "is_email_opt_in": [True, False, True],
            "brand_new_feature": [1.0, 2.0, 3.0],
            "label_churned": [0, 1, 0],
        }
    )
    spec = FeatureSpec.from_frame(frame)
    assert spec.features == ["country", "is_email_opt_in", "brand_new_feature"]
    unseen = frame.assign(country=["IT", "DE", "FR"])
    matrix = spec.matrix(unseen)
    assert list(matrix["country"].cat.categories) == ["DE", "FR"]
    assert matrix["country"].isna().tolist() == [True, False, False]
    assert matrix["is_email_opt_in"].tolist() == [1.0, 0.0, 1.0]


def test_scores_carry_parseable_top_drivers_and_versions(training):
    training_set, plan, result = training
    today = training_set[training_set["as_of_date"] == plan.evaluation[0]].head(50)
    scores = score_customers(today, result.churn, result.value, "c1", "v1", with_drivers=True)
    assert len(scores) == 50
    assert scores["churn_probability"].between(0, 1).all()
    assert (scores["predicted_value_90d"] >= 0).all()
    assert (scores["clv_12m"] >= scores["predicted_value_90d"] - 1e-9).all()
    drivers = json.loads(scores["top_drivers"].iloc[0])
    assert len(drivers) == 3 and set(drivers[0]) == {"feature", "contribution"}
    assert drivers[0]["contribution"] >= drivers[1]["contribution"]


def test_scores_skip_treeshap_yet_match_and_drivers_come_on_demand(training):
    training_set, plan, result = training
    today = training_set[training_set["as_of_date"] == plan.evaluation[0]].head(50)
    fast = score_customers(today, result.churn, result.value, "c1", "v1")
    full = score_customers(today, result.churn, result.value, "c1", "v1", with_drivers=True)
    assert fast["top_drivers"].isna().all()
    np.testing.assert_allclose(fast["churn_probability"], full["churn_probability"], rtol=1e-9)
    some = score_drivers(today, result.churn, today["customer_id"].iloc[[3, 7]].astype(str))
    assert some["customer_id"].tolist() == today["customer_id"].iloc[[3, 7]].astype(str).tolist()
    assert some["top_drivers"].tolist() == full["top_drivers"].iloc[[3, 7]].tolist()
    importance = global_importance(result.churn, n=5)
    assert len(importance) == 5 and importance["gain_share"].is_monotonic_decreasing


def test_top_drivers_orders_by_contribution():
    contrib = pd.DataFrame({"a": [0.1, -1.0], "b": [0.5, 0.2], "c": [-0.2, 0.3]})
    out = [json.loads(s) for s in top_drivers_json(contrib, k=2)]
    assert [d["feature"] for d in out[0]] == ["b", "a"]
    assert [d["feature"] for d in out[1]] == ["c", "b"]


def test_clv_grows_with_retention():
    v = np.array([100.0, 100.0])
    clv = clv_12m(v, np.array([0.9, 0.1]), 90)
    assert clv[1] > clv[0] > 100.0


def test_bgnbd_features_can_be_switched_off(training, small_config):
    training_set, plan, _ = training
    result = train_models(
        training_set, plan, replace(small_config, bgnbd_features=False, num_boost_round=20)
    )
    assert "bgnbd_p_alive" not in result.churn.spec.features
