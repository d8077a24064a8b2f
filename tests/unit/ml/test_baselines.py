"""BG/NBD and Gamma-Gamma recover the parameters they simulate from; the RFM heuristic ranks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tessera.ml.baselines import (
    BGNBDParams,
    RFMBaseline,
    bgnbd_expected_purchases,
    bgnbd_prob_no_purchase,
    fit_bgnbd,
    fit_gamma_gamma,
)


def _simulate_bgnbd(params: BGNBDParams, n: int, T: float, seed: int) -> tuple[np.ndarray, ...]:
    """Exact BG/NBD draws (Fader, Hardie & Lee 2005, section 2), vectorised over customers."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    now = np.zeros(n)
    active = np.ones(n, bool)
    while active.any():
        idx = np.flatnonzero(active)
        now[idx] += rng.exponential(1.0, idx.size) / lam[idx]
        buys = now[idx] < T
        bought = idx[buys]
        x[bought] += 1
        t_x[bought] = now[bought]
        dies = rng.random(bought.size) < p[bought]
        active[idx[~buys]] = False
        active[bought[dies]] = False
    return x, t_x, np.full(n, T)


def test_bgnbd_fit_recovers_known_parameters():
    truth = BGNBDParams(r=0.6, alpha=4.0, a=0.8, b=2.5)
    x, t_x, T = _simulate_bgnbd(truth, n=8000, T=52.0, seed=3)
    fitted = fit_bgnbd(x, t_x, T)
    for name in ("r", "alpha", "a", "b"):
        assert abs(getattr(fitted, name) / getattr(truth, name) - 1) < 0.3, (name, fitted)


def test_bgnbd_predictions_track_simulated_holdout():
    truth = BGNBDParams(r=0.6, alpha=4.0, a=0.8, b=2.5)
    x, t_x, T = _simulate_bgnbd(truth, n=4000, T=52.0, seed=5)
    expected = bgnbd_expected_purchases(truth, 26.0, x, t_x, T)
    p0 = bgnbd_prob_no_purchase(truth, 26.0, x, t_x, T)
    assert np.all((p0 >= 0) & (p0 <= 1))
    # More recent buyers with the same frequency are more likely to buy again.
    recent = bgnbd_expected_purchases(
        truth, 26.0, np.array([3.0]), np.array([50.0]), np.array([52.0])
    )
    stale = bgnbd_expected_purchases(
        truth, 26.0, np.array([3.0]), np.array([10.0]), np.array([52.0])
    )
    assert recent[0] > stale[0]
    assert expected.mean() > 0


def test_gamma_gamma_fit_recovers_mean_spend():
    rng = np.random.default_rng(11)
    p, q, gamma = 6.0, 4.0, 15.0
    nu = rng.gamma(q, 1.0 / gamma, 6000)
    x = rng.integers(1, 8, 6000).astype(float)
    m = np.array([rng.gamma(p, 1.0 / v, int(k)).mean() for v, k in zip(nu, x, strict=True)])
    fitted = fit_gamma_gamma(x, m)
    # p and q trade off; the population mean spend p*gamma/(q-1) is well identified.
    assert abs(fitted.p * fitted.gamma / (fitted.q - 1) / (p * gamma / (q - 1)) - 1) < 0.1


def test_rfm_ranks_recent_buyers_as_less_likely_to_churn():
    train = pd.DataFrame(
        {
            "days_since_last_order": [1, 5, 50, 200, np.nan],
            "label_churned": [0, 0, 1, 1, 1],
            "revenue_90d": [100, 50, 0, 0, 0],
        }
    )
    pred = RFMBaseline(90).fit(train).predict(train)
    assert pred["churn_probability"].is_monotonic_increasing
    assert pred["predicted_value"].tolist() == [100, 50, 0, 0, 0]
