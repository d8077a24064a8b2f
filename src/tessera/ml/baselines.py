"""Baselines the LightGBM models must beat: an RFM heuristic and BG/NBD + Gamma-Gamma.

BG/NBD follows Fader, Hardie & Lee (2005), "Counting your customers the easy way"; Gamma-Gamma
follows Fader & Hardie (2013), "The Gamma-Gamma model of monetary value". Both are fitted by
maximum likelihood with scipy (lifetimes / pymc-marketing are not dependencies).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special
from sklearn.isotonic import IsotonicRegression

log = logging.getLogger(__name__)

#: Time unit of the BG/NBD summaries, in days: weeks keep the rate parameters well scaled.
_UNIT_DAYS = 7.0


@dataclass(frozen=True)
class BGNBDParams:
    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float


def bgnbd_log_likelihood(
    params: BGNBDParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Per-customer log-likelihood of (x repeat purchases, last at t_x, observed for T); eq. (6)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.betaln(a, b + x) - special.betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return a1 + a2 + np.logaddexp(a3, a4)


class _PooledSummaries:
    """The summaries of `fit_bgnbd` with each distinct x, t_x and T kept once.

    The optimiser evaluates the likelihood a few hundred times; its special functions and
    logarithms depend on one summary each, which take far fewer distinct values than there
    are customers, so they are computed per distinct value and indexed back. The per-customer
    arithmetic is `bgnbd_log_likelihood`'s, term for term, so the values are the same.
    """

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
        self.x, self.t_x, self.T = x, t_x, T
        self.ux, self.ix = np.unique(x, return_inverse=True)
        self.utx, self.itx = np.unique(t_x, return_inverse=True)
        self.uT, self.iT = np.unique(T, return_inverse=True)
        self.repeat = x > 0

    def log_likelihood(self, params: BGNBDParams) -> np.ndarray:
        r, alpha, a, b = params.r, params.alpha, params.a, params.b
        x, ux, ix = self.x, self.ux, self.ix
        a1 = (special.gammaln(r + ux) - special.gammaln(r) + r * np.log(alpha))[ix]
        a2 = (special.betaln(a, b + ux) - special.betaln(a, b))[ix]
        a3 = -(r + x) * np.log(alpha + self.uT)[self.iT]
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.where(
                self.repeat,
                np.log(a)
                - np.log(np.maximum(b + ux - 1, 1e-12))[ix]
                - (r + x) * np.log(alpha + self.utx)[self.itx],
                -np.inf,
            )
        return a1 + a2 + np.logaddexp(a3, a4)


def fit_bgnbd(
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    max_customers: int = 20_000,
    seed: int = 0,
) -> BGNBDParams:
    """Maximum-likelihood BG/NBD parameters.

    The four parameters describe the population, so a seeded sample of `max_customers` is
    enough; summaries are rounded to a tenth of the time unit and identical ones pooled with
    weights, which keeps the fit well under a second.
    """
    frame = pd.DataFrame({"x": x, "t_x": t_x, "T": T}).astype(float)
    if len(frame) > max_customers:
        frame = frame.sample(n=max_customers, random_state=seed)
    frame = frame.round({"t_x": 1, "T": 1})
    frame["T"] = frame["T"].clip(lower=0.1)
    frame["t_x"] = frame["t_x"].clip(lower=0.0, upper=frame["T"])
    grouped = frame.groupby(["x", "t_x", "T"], sort=True).size().reset_index(name="w")
    gx, gtx, gT, w = (grouped[c].to_numpy(float) for c in ("x", "t_x", "T", "w"))
    pooled = _PooledSummaries(gx, gtx, gT)

    def objective(log_params: np.ndarray) -> float:
        ll = pooled.log_likelihood(BGNBDParams(*np.exp(log_params)))
        return -float((w * ll).sum() / w.sum())

    result = optimize.minimize(
        objective,
        x0=np.log([1.0, max(float(np.average(gT, weights=w)), 1.0), 1.0, 1.0]),
        method="L-BFGS-B",
        bounds=[(-8.0, 8.0)] * 4,
    )
    params = BGNBDParams(*(float(v) for v in np.exp(result.x)))
    log.debug("BG/NBD fit %s (converged=%s)", params, result.success)
    return params


def bgnbd_p_alive(params: BGNBDParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """P(still alive at T | history); 1 for customers without repeat purchases (x = 0)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = (a / np.maximum(b + x - 1, 1e-12)) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    return np.where(x > 0, 1.0 / (1.0 + odds), 1.0)


def bgnbd_prob_no_purchase(
    params: BGNBDParams, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """P(no purchase in (T, T+t] | history).

    An alive customer dies only right after a purchase, so zero purchases in the window happens
    iff no Poisson event occurs; with lambda | alive ~ Gamma(r+x, alpha+T) that is
    ((alpha+T)/(alpha+T+t))^(r+x).
    """
    p_alive = bgnbd_p_alive(params, x, t_x, T)
    no_event = ((params.alpha + T) / (params.alpha + T + t)) ** (params.r + x)
    return 1.0 - p_alive * (1.0 - no_event)


def bgnbd_expected_purchases(
    params: BGNBDParams, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """E[purchases in (T, T+t] | history], eq. (10) of Fader, Hardie & Lee (2005)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + T + t)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
    first = (a + b + x - 1) / (a - 1)
    second = 1.0 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = 1.0 + np.where(
            x > 0,
            (a / np.maximum(b + x - 1, 1e-12)) * ((alpha + T) / (alpha + t_x)) ** (r + x),
            0.0,
        )
    return np.clip(first * second / denom, 0.0, None)


def gamma_gamma_log_likelihood(
    params: GammaGammaParams, x: np.ndarray, m: np.ndarray
) -> np.ndarray:
    """Per-customer log-likelihood of mean spend m over x transactions (x > 0)."""
    p, q, g = params.p, params.q, params.gamma
    return (
        special.gammaln(p * x + q)
        - special.gammaln(p * x)
        - special.gammaln(q)
        + q * np.log(g)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(g + x * m)
    )


def fit_gamma_gamma(
    x: np.ndarray, m: np.ndarray, max_customers: int = 20_000, seed: int = 0
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters from customers with x > 0 and m > 0."""
    x, m = np.asarray(x, float), np.asarray(m, float)
    keep = np.flatnonzero((x > 0) & (m > 0))
    if keep.size > max_customers:
        keep = np.sort(np.random.default_rng(seed).choice(keep, max_customers, replace=False))
    x, m = x[keep], m[keep]
    # `gamma_gamma_log_likelihood` term for term, with what does not depend on the parameters
    # computed once and the gamma functions once per distinct x (far fewer than customers).
    ux, ix = np.unique(x, return_inverse=True)
    log_m, log_x = np.log(m), np.log(x)

    def objective(log_params: np.ndarray) -> float:
        p, q, g = np.exp(log_params)
        px = p * x
        gammas = (special.gammaln(p * ux + q) - special.gammaln(p * ux))[ix]
        ll = (
            gammas
            - special.gammaln(q)
            + q * np.log(g)
            + (px - 1) * log_m
            + px * log_x
            - (px + q) * np.log(g + x * m)
        )
        return -float(np.mean(ll))

    result = optimize.minimize(
        objective,
        x0=np.log([2.0, 3.0, max(float(np.mean(m)), 1.0)]),
        method="Nelder-Mead",
        options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-10},
    )
    return GammaGammaParams(*np.exp(result.x))


def gamma_gamma_expected_spend(
    params: GammaGammaParams, x: np.ndarray, m: np.ndarray
) -> np.ndarray:
    """E[spend per transaction | x, m]; the population mean where x = 0."""
    p, q, g = params.p, params.q, params.gamma
    population = p * g / (q - 1) if q > 1 else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        conditional = p * (g + x * m) / (p * x + q - 1)
    return np.where(x > 0, conditional, population)


def rfm_summary(features: pd.DataFrame) -> pd.DataFrame:
    """BG/NBD summaries (x, t_x, T in weeks, mean spend) from the shared feature columns.

    Customers enter the model at their first purchase (T = age since it), as in the paper;
    customers without any purchase get NaN and are handled by the caller.
    """
    orders = features["orders_total"].fillna(0).to_numpy(float)
    T = features["days_since_first_order"].to_numpy(float) / _UNIT_DAYS
    recency = features["days_since_last_order"].to_numpy(float) / _UNIT_DAYS
    return pd.DataFrame(
        {
            "x": np.where(orders > 0, orders - 1, np.nan),
            "t_x": T - recency,
            "T": T,
            "m": features["avg_order_value"].to_numpy(float),
        },
        index=features.index,
    )


@dataclass
class BGNBDBaseline:
    """BG/NBD for P(no purchase in H days) and, with Gamma-Gamma, H-day value.

    It is unsupervised: it is fitted on the history visible at the scoring date itself (no
    labels needed). Customers who never bought get the churn rate and mean value that
    never-buyers showed in the labelled training slice.
    """

    horizon_days: int
    nonbuyer_churn: float = 1.0
    nonbuyer_value: float = 0.0

    def fit_nonbuyers(self, train: pd.DataFrame) -> BGNBDBaseline:
        nonbuyer = train["orders_total"].fillna(0) <= 0
        if nonbuyer.any():
            self.nonbuyer_churn = float(train.loc[nonbuyer, "label_churned"].mean())
            self.nonbuyer_value = float(train.loc[nonbuyer, "label_value"].mean())
        return self

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        s = rfm_summary(features)
        buyer = s["x"].notna().to_numpy()
        t = self.horizon_days / _UNIT_DAYS
        churn = np.full(len(s), self.nonbuyer_churn)
        value = np.full(len(s), self.nonbuyer_value)
        if buyer.sum() >= 10:
            b = s[buyer]
            x, t_x, T, m = (b[c].to_numpy(float) for c in ("x", "t_x", "T", "m"))
            params = fit_bgnbd(x, t_x, T)
            gg = fit_gamma_gamma(x + 1, m)  # all purchases carry the mean spend
            churn[buyer] = bgnbd_prob_no_purchase(params, t, x, t_x, T)
            spend = gamma_gamma_expected_spend(gg, x + 1, np.nan_to_num(m))
            value[buyer] = bgnbd_expected_purchases(params, t, x, t_x, T) * spend
        return pd.DataFrame(
            {"churn_probability": churn, "predicted_value": value}, index=features.index
        )


def _window_column(columns: pd.Index, prefix: str, horizon_days: int) -> str:
    """The `<prefix>_<n>d` column whose window is closest to the horizon."""
    windows = {
        int(c[len(prefix) + 1 : -1]): c
        for c in columns
        if c.startswith(prefix + "_") and c.endswith("d") and c[len(prefix) + 1 : -1].isdigit()
    }
    if not windows:
        raise KeyError(f"no {prefix}_<n>d column among the features")
    return windows[min(windows, key=lambda n: abs(n - horizon_days))]


@dataclass
class RFMBaseline:
    """The marketer's heuristic: recency rank for churn, last-period spend for value.

    Recency is turned into a probability by an isotonic map learned on the training slice, so
    the Brier score and calibration curve are comparable; the ranking is recency itself.
    """

    horizon_days: int
    _iso: IsotonicRegression | None = None

    def _recency(self, features: pd.DataFrame) -> np.ndarray:
        recency = features["days_since_last_order"].to_numpy(float)
        # Never-buyers rank as the most at risk: older than anyone who bought.
        return np.where(np.isnan(recency), 1e6, recency)

    def fit(self, train: pd.DataFrame) -> RFMBaseline:
        self._iso = IsotonicRegression(increasing=True, out_of_bounds="clip")
        self._iso.fit(self._recency(train), train["label_churned"].to_numpy(float))
        return self

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        if self._iso is None:
            raise RuntimeError("RFMBaseline.fit must run before predict")
        recency = self._recency(features)
        # Tiny recency term keeps the ranking strict where the isotonic map is flat.
        churn = np.clip(self._iso.predict(recency) + recency * 1e-9, 0.0, 1.0)
        return pd.DataFrame(
            {"churn_probability": churn, "predicted_value": rfm_value(features, self.horizon_days)},
            index=features.index,
        )


def rfm_value(features: pd.DataFrame, horizon_days: int) -> np.ndarray:
    """The heuristic's value: revenue of the recent window closest to the horizon, scaled."""
    column = _window_column(features.columns, "revenue", horizon_days)
    window = int(column[len("revenue_") : -1])
    return features[column].fillna(0).to_numpy(float) * (horizon_days / window)


BGNBD_FEATURES = (
    "bgnbd_p_alive",
    "bgnbd_p_no_purchase",
    "bgnbd_expected_purchases",
    "bgnbd_expected_spend",
)
#: The same BG/NBD outputs over the asked horizon (not features: the models are trained on
#: the label window; these carry their predictions to the horizon, see ml/training.py).
BGNBD_HORIZON_COLUMNS = ("_bgnbd_p_no_purchase_h", "_bgnbd_expected_purchases_h")


_FITS: dict[str, tuple[BGNBDParams, GammaGammaParams]] = {}


def _fitted(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray, m: np.ndarray
) -> tuple[BGNBDParams, GammaGammaParams]:
    """BG/NBD and Gamma-Gamma fits of one date's summaries, remembered by their content: the
    same date is summarised for the held-out check, the final fit and the evaluation (the
    fits are deterministic, so a repeat gives the same parameters)."""
    import hashlib

    key = hashlib.sha256(
        b"".join(np.ascontiguousarray(a, dtype=float).tobytes() for a in (x, t_x, T, m))
    ).hexdigest()
    if key not in _FITS:
        if len(_FITS) >= 256:
            _FITS.clear()
        # All purchases carry the mean spend, hence x + 1 for Gamma-Gamma.
        _FITS[key] = (fit_bgnbd(x, t_x, T), fit_gamma_gamma(x + 1, m))
    return _FITS[key]


def add_bgnbd_features(
    frame: pd.DataFrame,
    window_days: int,
    horizon_days: int | None = None,
    fit_on: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Add BG/NBD + Gamma-Gamma outputs, fitted per as_of_date on that date's rows only.

    Columns: P(alive), P(no purchase) and expected purchases over `window_days` (the label
    window the models learn on), the Gamma-Gamma expected spend per order, and P(no purchase)
    and expected purchases over `horizon_days` (default: the window) as `_bgnbd_..._h`. The fit
    is unsupervised and uses only the history summarised in that date's rows, so the columns
    are as point-in-time as the inputs. Customers without a purchase get NaN.

    `fit_on` (a frame that holds `frame`'s rows among others, e.g. every row of the dates a
    sample was drawn from): fit each date on its rows there, and compute the columns for
    `frame`'s rows only; the values are those of `add_bgnbd_features(fit_on)` on those rows.
    """
    horizon_days = horizon_days or window_days
    out = frame.copy()
    for column in (*BGNBD_FEATURES, *BGNBD_HORIZON_COLUMNS):
        out[column] = np.nan
    tw, th = window_days / _UNIT_DAYS, horizon_days / _UNIT_DAYS
    wanted = None if fit_on is None else dict(iter(frame.groupby("as_of_date", sort=True)))
    for day, group in (frame if fit_on is None else fit_on).groupby("as_of_date", sort=True):
        s = rfm_summary(group)
        buyer = s["x"].notna()
        if buyer.sum() < 10 or (wanted is not None and day not in wanted):
            continue
        b = s[buyer]
        x, t_x, T, m = (b[c].to_numpy(float) for c in ("x", "t_x", "T", "m"))
        params, gg = _fitted(x, t_x, T, m)
        if wanted is not None:
            s = rfm_summary(wanted[day])
            b = s[s["x"].notna()]
            x, t_x, T, m = (b[c].to_numpy(float) for c in ("x", "t_x", "T", "m"))
        idx = b.index
        out.loc[idx, "bgnbd_p_alive"] = bgnbd_p_alive(params, x, t_x, T)
        out.loc[idx, "bgnbd_p_no_purchase"] = bgnbd_prob_no_purchase(params, tw, x, t_x, T)
        out.loc[idx, "bgnbd_expected_purchases"] = bgnbd_expected_purchases(params, tw, x, t_x, T)
        out.loc[idx, "bgnbd_expected_spend"] = gamma_gamma_expected_spend(
            gg, x + 1, np.nan_to_num(m)
        )
        if horizon_days == window_days:
            out.loc[idx, "_bgnbd_p_no_purchase_h"] = out.loc[idx, "bgnbd_p_no_purchase"]
            out.loc[idx, "_bgnbd_expected_purchases_h"] = out.loc[idx, "bgnbd_expected_purchases"]
        else:
            out.loc[idx, "_bgnbd_p_no_purchase_h"] = bgnbd_prob_no_purchase(params, th, x, t_x, T)
            out.loc[idx, "_bgnbd_expected_purchases_h"] = bgnbd_expected_purchases(
                params, th, x, t_x, T
            )
    return out


def bgnbd_outputs(
    frame: pd.DataFrame, days: int, window_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """(P(no purchase), expected purchases) over `days`, which is the window or the horizon of
    the columns `add_bgnbd_features` added."""
    suffix = "" if days == window_days else "_h"
    prefix = "" if days == window_days else "_"
    q = frame[f"{prefix}bgnbd_p_no_purchase{suffix}"].to_numpy(float)
    e = frame[f"{prefix}bgnbd_expected_purchases{suffix}"].to_numpy(float)
    return q, e
