"""Any horizon, the final refit and the choice among candidates (ml/training.py)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tessera.ml.errors import NotEnoughHistoryError
from tessera.ml.evaluation import verdict
from tessera.ml.training import (
    CANDIDATES,
    ENSEMBLE_MEMBERS,
    carry_churn,
    carry_ratio,
    choose_label_window,
    describe_level_check,
    level_check,
    plan_slices,
    rank_average,
    select_winners,
)


def _weekly(start: date, weeks: int) -> list[date]:
    return [start + timedelta(days=7 * k) for k in range(weeks)]


def test_the_horizon_itself_is_the_label_window_when_the_history_allows():
    dates = _weekly(date(2023, 1, 2), 52)
    plan = plan_slices(dates, date(2024, 1, 1), 90)
    assert plan.window == plan.evaluation_window == 90
    assert "the asked horizon" in plan.describe()
    assert max(plan.train + plan.valid) + timedelta(days=90) <= min(plan.evaluation)
    # The final fit uses every date with a complete label window, the evaluation slice too.
    assert plan.evaluation[0] in plan.final and plan.final[-1] + timedelta(days=90) <= plan.cutoff
    assert plan.final[-1] + timedelta(days=97) > plan.cutoff


def test_a_longer_horizon_learns_the_longest_honest_window_and_checks_on_half_of_it():
    as_of = date(1997, 10, 1)
    dates = [as_of - timedelta(days=7 * k) for k in range(35, 0, -1)]  # 35 weeks
    window, overlapping = choose_label_window(dates, as_of, 273)
    assert window < 273 and window % 7 == 0 and not overlapping
    plan = plan_slices(dates, as_of, 273)
    assert plan.window == window and plan.horizon == 273
    assert plan.evaluation_window == window // 2 // 7 * 7
    assert "carried to the 273-day horizon" in plan.describe()
    # The check trains on the final fit's dates and its labels end before its slice begins.
    assert set(plan.train + plan.valid) <= set(plan.final)
    last_fit = max(plan.train + plan.valid)
    assert last_fit + timedelta(days=plan.evaluation_window) <= plan.evaluation[0]
    assert all(d + timedelta(days=plan.window) <= as_of for d in plan.final)


def test_only_fewer_than_two_snapshot_dates_are_refused():
    as_of = date(2024, 1, 1)
    plan = plan_slices([as_of - timedelta(days=14), as_of - timedelta(days=7)], as_of, 365)
    assert plan.window < 365
    with pytest.raises(NotEnoughHistoryError, match="at least two snapshot dates"):
        plan_slices([as_of - timedelta(days=7)], as_of, 365)


def _bgnbd_frame(q_w, q_h, e_w, e_h) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "bgnbd_p_no_purchase": q_w,
            "_bgnbd_p_no_purchase_h": q_h,
            "bgnbd_expected_purchases": e_w,
            "_bgnbd_expected_purchases_h": e_h,
        }
    )


def test_churn_is_carried_by_bgnbds_own_change_between_the_windows():
    frame = _bgnbd_frame(
        [0.8, 0.5, np.nan], [0.6, 0.3, np.nan], [0.3, 1.0, np.nan], [0.9, 2.5, np.nan]
    )
    p = np.array([0.8, 0.5, 0.81])
    assert np.allclose(carry_churn(p, frame, 90, 90), p)
    carried = carry_churn(p, frame, 90, 270)
    # Where the model agrees with BG/NBD over the window it agrees over the horizon too.
    assert carried[:2] == pytest.approx([0.6, 0.3])
    # No BG/NBD summary (never bought): a constant hazard.
    assert carried[2] == pytest.approx(0.81**3)
    ratio = carry_ratio(frame, 90, 270)
    assert ratio == pytest.approx([3.0, 2.5, 3.0])
    assert np.allclose(carry_ratio(frame, 90, 90), 1.0)


def test_the_winner_is_the_best_on_the_held_out_slice_ties_going_to_the_learnt_model():
    table = pd.DataFrame(
        {
            "auc": [0.70, 0.72, 0.72, 0.71, 0.715, 0.60],
            "top_decile_share": [0.50, 0.49, 0.48, 0.47, 0.53, 0.40],
            "spearman": [0.3] * 6,
        },
        index=list(CANDIDATES),
    )
    winners = select_winners(table)
    assert winners == {"churn": "lightgbm_bgnbd", "value": "bgnbd"}
    v = verdict(table, winners)
    assert not v.passed and v.failures == ["value"]
    assert "BG/NBD + Gamma-Gamma wins on top-10% revenue capture 0.530 (+0.030" in v.message
    assert "LightGBM over BG/NBD wins on churn AUC 0.720" in v.message
    assert "best baseline BG/NBD + Gamma-Gamma 0.715" in v.message
    # A tie with a baseline is not a win over it.
    tied = verdict(table.assign(auc=[0.70, 0.72, 0.71, 0.70, 0.72, 0.60]), None)
    assert "churn" in tied.failures


def test_the_final_fit_uses_every_labelled_date_and_both_fits_are_recorded(training):
    training_set, plan, result = training
    final = result.fits["final"]
    assert final["dates"] == [d.isoformat() for d in plan.final]
    assert plan.evaluation[0].isoformat() in final["dates"]
    assert result.rows["final"] > result.rows["train"]
    assert set(result.fits["evaluation"]) >= {"train_dates", "evaluation_dates", "rounds"}
    assert final["models"] == result.winners
    assert result.churn.method == result.winners["churn"]
    assert result.value.method == result.winners["value"]


def test_a_check_that_would_train_on_few_of_the_final_dates_uses_half_windows():
    # 9 months of weekly snapshots and a 90-day horizon: the horizon fits, but a full-window
    # check would train on 9 of the final fit's 23 dates.
    as_of = date(1997, 10, 1)
    dates = [as_of - timedelta(days=7 * k) for k in range(35, 0, -1)]
    plan = plan_slices(dates, as_of, 90)
    assert plan.window == 90 and plan.evaluation_window == 42
    assert "the asked horizon" in plan.describe() and "42-day labels" in plan.describe()
    fit = plan.train + plan.valid
    # The check trains on (at least) the final fit's dates, its labels closed before its slice.
    assert set(plan.final) <= set(fit)
    assert max(fit) + timedelta(days=42) <= plan.evaluation[0]


def test_the_ensemble_averages_its_members_with_equal_weights(training):
    """Churn: a calibrated, monotone map of the members' mean percentile rank; value: their
    geometric mean up to one level constant (set by the anchor or scale)."""
    _, _, result = training
    p, held_out = result.predictions, result.held_out
    assert ENSEMBLE_MEMBERS["churn"] == ("lightgbm_bgnbd", "lightgbm", "bgnbd_expected_purchases")
    expected = held_out["bgnbd_expected_purchases"].to_numpy(float)
    score = rank_average(
        [p["churn_lightgbm_bgnbd"], p["churn_lightgbm"], -expected], p["as_of_date"]
    )
    rho = stats.spearmanr(score, p["churn_ensemble"]).statistic
    assert rho > 0.999999
    value = [np.log(np.clip(p[f"value_{m}"], 1e-3, None)) for m in ENSEMBLE_MEMBERS["value"]]
    ratio = np.log(p["value_ensemble"].to_numpy()) - np.mean(value, axis=0)
    assert "bgnbd" in ENSEMBLE_MEMBERS["value"]
    assert np.ptp(ratio) < 1e-6
    # It is a candidate of its own, compared with the others on the held-out slice.
    assert "ensemble" in result.metrics.index


def test_rank_average_ranks_within_each_date_and_skips_missing_scores():
    dates = np.array(["d1", "d1", "d1", "d2", "d2"])
    a = np.array([0.1, 0.5, 0.9, 10.0, 20.0])
    b = np.array([3.0, 2.0, 1.0, np.nan, 5.0])
    out = rank_average([a, b], dates)
    # d1: a ranks 1/3, 2/3, 1; b ranks 1, 2/3, 1/3 -> the mean is 2/3 for all three.
    assert out[:3] == pytest.approx([2 / 3] * 3)
    # d2: the row without b keeps a's rank alone (0.5); the other averages 1 and 1.
    assert out[3:] == pytest.approx([0.5, 1.0])
    assert rank_average([np.array([np.nan])], np.array(["d"])) == pytest.approx([0.5])


def _anchored_history(ratios: list[float], window: int) -> pd.DataFrame:
    """Weekly dates of 20 customers each whose actual revenue is `ratio` x BG/NBD x GG's."""
    rows = []
    for k, ratio in enumerate(ratios):
        day = date(2024, 1, 1) + timedelta(days=7 * k)
        for c in range(20):
            expected, spend = 0.5 + c / 20, 10.0
            rows.append(
                {
                    "as_of_date": day,
                    "customer_id": f"c{c}",
                    "bgnbd_p_no_purchase": 0.5,
                    "bgnbd_expected_purchases": expected,
                    "bgnbd_expected_spend": spend,
                    "label_churned": c % 2,
                    "label_value": ratio * expected * spend,
                }
            )
    return pd.DataFrame(rows)


def test_the_level_check_replays_the_newest_window_anchor_on_the_history():
    # BG/NBD's revenue error doubles from the fourth date on, with a two-week window: the
    # anchor replayed two weeks later is right where the level held, and -50% after the jump.
    ratios = [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    check = level_check(_anchored_history(ratios, 14), 14)
    assert check["dates"] == 6 and check["ratio_newest"] == 2.0
    assert (check["ratio_min"], check["ratio_max"]) == (1.0, 2.0)
    # Dates 3..6 have a date two weeks before: 1/1, 1/2, 1/2, 2/2.
    assert check["replayed"] == 4
    assert check["replayed_error_pct_min"] == -50.0
    assert check["replayed_error_pct_max"] == 0.0
    assert check["replayed_error_pct_median"] == -25.0
    said = describe_level_check(check)
    assert "newest 14-day window (actual/predicted 2.00)" in said
    assert "ranged 1.00 .. 2.00" in said and "-50% .. +0%" in said


def test_the_level_check_needs_two_dates_and_says_nothing_without_them():
    assert level_check(_anchored_history([1.3], 14), 14) is None
    assert describe_level_check(None) == ""
    steady = level_check(_anchored_history([1.2, 1.2], 28), 28)
    assert steady["replayed"] == 0 and "replayed" not in describe_level_check(steady)
