"""Point-in-time training sets, LightGBM churn and value models, and their held-out evaluation."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd

from tessera.ml.baselines import BGNBD_FEATURES, RFMBaseline, rfm_value
from tessera.ml.config import TrainConfig
from tessera.ml.errors import NotEnoughHistoryError, RegistryError
from tessera.ml.evaluation import SELECTION_METRIC, compare_models, verdict
from tessera.ml.features import SEASON_COLUMN, FeatureSpec, add_season_index, feature_columns

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlicePlan:
    """Snapshot dates used to train, validate (early stopping, calibration) and evaluate, and
    the label window the models learn on.

    The label window is the asked horizon when the history allows, else the longest window
    that still leaves an honest held-out layout (`choose_label_window`); the models carry
    their predictions from the window to the horizon. The evaluation dates are the newest
    with a complete label window before `cutoff`; train and validation dates end at least one
    window before them, so their label windows close before the evaluation slice starts
    (`overlapping_labels` says when history was too short for that). `final` is every
    labelled date: the models that score are refit on all of them after the evaluation.
    """

    cutoff: date
    train: list[date]
    valid: list[date]
    evaluation: list[date]
    overlapping_labels: bool
    label_window: int = 0
    horizon: int = 0
    final: list[date] = field(default_factory=list)
    #: Label window of the held-out check when it differs from the final fit's (see
    #: `plan_slices`); 0: the same.
    eval_window: int = 0

    @property
    def all_dates(self) -> list[date]:
        return sorted(set(self.train + self.valid + self.evaluation + self.final))

    @property
    def window(self) -> int:
        """The label window (plans pickled before it existed used the horizon)."""
        return self.label_window or self.horizon

    @property
    def evaluation_window(self) -> int:
        """The label window of the evaluation fit and the held-out slice."""
        return getattr(self, "eval_window", 0) or self.window

    def describe(self) -> str:
        check = (
            f"; the held-out check used {self.evaluation_window}-day labels on the final "
            "fit's snapshot dates"
            if self.evaluation_window != self.window
            else ""
        )
        if self.label_window == self.horizon:
            return f"trained on {self.horizon}-day label windows (the asked horizon){check}"
        return (
            f"trained on {self.label_window}-day label windows, the longest the history allows; "
            f"carried to the {self.horizon}-day horizon by BG/NBD's closed-form horizon "
            f"scaling (see docs/models.md){check}"
        )


#: Fewest snapshot dates (training plus validation) before the evaluation slice for a layout
#: without overlapping labels; below that a shorter label window is used.
MIN_FIT_DATES = 8


def _strict_fit_dates(dates: Sequence[date], as_of: date, window: int) -> tuple[list, list]:
    usable = [d for d in dates if d + timedelta(days=window) <= as_of]
    if not usable:
        return [], []
    evaluation = usable[-1]
    return usable, [d for d in usable if d + timedelta(days=window) <= evaluation]


def choose_label_window(
    dates: Sequence[date], as_of: date, horizon_days: int, min_fit_dates: int | None = None
) -> tuple[int, bool]:
    """(label window, overlapping) for the snapshot dates: the horizon itself when it leaves
    `min_fit_dates` dates whose labels close before the evaluation slice's, else the longest
    such window in whole weeks, else (very short history) half the history with overlapping
    labels."""
    dates = sorted(set(dates))
    min_fit_dates = min_fit_dates or MIN_FIT_DATES
    candidates = [horizon_days] + list(range((horizon_days - 1) // 7 * 7, 6, -7))
    for window in candidates:
        _, fit = _strict_fit_dates(dates, as_of, window)
        if len(fit) >= min_fit_dates:
            return window, False
    span = (as_of - dates[0]).days if dates else 0
    return max(1, min(horizon_days, span // 2)), True


def plan_slices(
    dates: Sequence[date],
    as_of: date,
    horizon_days: int,
    train_dates: int = 0,
    valid_dates: int = 2,
    eval_dates: int = 1,
) -> SlicePlan:
    """Choose the label window and snapshot dates for a model trained at `as_of` (its cut-off).

    `train_dates` caps the training dates (0: every date the history has).
    """
    dates = sorted(set(dates))
    window, overlapping = choose_label_window(dates, as_of, horizon_days)
    final, strict_fit = _strict_fit_dates(dates, as_of, window)
    # When a full-window check would train on fewer than half the dates the final fit uses,
    # it would judge the candidates on a much smaller history than the one that scores (on
    # 9 months of CDNOW it picks BG/NBD, which the later outcome does not bear out).
    few = len(strict_fit) * 2 < len(final)
    if (window < horizon_days or few) and len(dates) >= MIN_FIT_DATES and not overlapping:
        return _plan_short_history(dates, as_of, window, horizon_days, train_dates, valid_dates)
    usable = [d for d in dates if d + timedelta(days=window) <= as_of]
    if len(usable) < 2:
        raise _too_short(dates, as_of, window)
    eval_dates = min(eval_dates, len(usable) - 1)
    evaluation = usable[-eval_dates:]
    strict = [d for d in usable if d + timedelta(days=window) <= evaluation[0]]
    if len(strict) < 2:
        overlapping = True
    fit = strict if not overlapping else [d for d in usable if d < evaluation[0]]
    if overlapping:
        log.warning(
            "history too short for label windows that end before the evaluation slice %s; "
            "training on earlier snapshots whose label windows overlap it",
            evaluation[0],
        )
    train, valid = _split_fit(fit, train_dates, valid_dates)
    return SlicePlan(
        as_of, train, valid, evaluation, overlapping, window, horizon_days, list(usable)
    )


def _too_short(dates: Sequence[date], as_of: date, window: int) -> NotEnoughHistoryError:
    usable = [d for d in dates if d + timedelta(days=window) <= as_of]
    earliest = dates[0] if dates else "none"
    return NotEnoughHistoryError(
        f"not enough history to train for as-of {as_of}: {len(usable)} snapshot date(s) "
        f"with a complete {window}-day label window before it (earliest snapshot: "
        f"{earliest}); need at least two snapshot dates with some days of orders after "
        "each, i.e. a few weeks more history before as-of"
    )


def _split_fit(fit: list[date], train_dates: int, valid_dates: int) -> tuple[list, list]:
    n_valid = min(valid_dates, len(fit) - 1)
    valid = fit[len(fit) - n_valid :] if n_valid > 0 else []
    train = fit[: len(fit) - n_valid]
    if train_dates:
        train = train[-train_dates:]
    return train, valid


def _plan_short_history(
    dates: list[date],
    as_of: date,
    window: int,
    horizon_days: int,
    train_dates: int,
    valid_dates: int,
) -> SlicePlan:
    """The layout when the horizon is longer than an honest held-out layout allows, or when
    that layout would train the check on fewer than half of the final fit's dates.

    The final models learn on the label window `choose_label_window` found (L) from every
    date with a complete one. The held-out check trains on those same snapshot dates with
    labels half as long (L/2) and is judged on the slice L/2 before as-of, whose
    labels no training label overlaps: so the candidates are compared on as much history as
    the final fit uses, rather than on the few oldest dates a full-window layout leaves.
    """
    final = [d for d in dates if d + timedelta(days=window) <= as_of]
    eval_window = max(7, window // 2 // 7 * 7)
    usable = [d for d in dates if d + timedelta(days=eval_window) <= as_of]
    if len(final) < 2 or len(usable) < 3:
        raise _too_short(dates, as_of, window)
    evaluation = usable[-1:]
    fit = [d for d in usable if d + timedelta(days=eval_window) <= evaluation[0]]
    overlapping = len(fit) < 2
    if overlapping:
        fit = [d for d in usable if d < evaluation[0]]
    train, valid = _split_fit(fit, train_dates, valid_dates)
    return SlicePlan(
        as_of,
        train,
        valid,
        evaluation,
        overlapping,
        window,
        horizon_days,
        final,
        eval_window,
    )


def training_set_sql(
    snapshots: str,
    orders: str,
    dates: Sequence[date],
    horizon_days: int,
    as_of: date,
    eval_days: int | None = None,
) -> str:
    """Features as of each date t plus labels from [t, t+H): churned (no purchase), value.

    `orders` is a relation with customer_id, ordered_at and amount of revenue-bearing orders.
    Orders at or after `as_of` are never read, whatever the dates asked for. With `eval_days`
    the labels over [t, t+eval_days) are added as `label_churned_eval`, `label_value_eval`.
    """
    e = int(eval_days or horizon_days)
    date_list = ", ".join(f"date '{d.isoformat()}'" for d in sorted(set(dates)))
    return f"""
with snaps as (
    select * from {snapshots} where as_of_date in ({date_list})
),
visible_orders as (
    select customer_id, ordered_at, amount from {orders}
    where ordered_at < timestamp '{as_of.isoformat()}'
),
labels as (
    select s.as_of_date, s.customer_id,
           count(o.customer_id) filter (where o.ordered_at < s.as_of_date::timestamp
               + to_days(cast({int(horizon_days)} as integer))) as n_orders,
           coalesce(sum(o.amount) filter (where o.ordered_at < s.as_of_date::timestamp
               + to_days(cast({int(horizon_days)} as integer))), 0) as value,
           count(o.customer_id) filter (where o.ordered_at < s.as_of_date::timestamp
               + to_days(cast({e} as integer))) as n_orders_eval,
           coalesce(sum(o.amount) filter (where o.ordered_at < s.as_of_date::timestamp
               + to_days(cast({e} as integer))), 0) as value_eval
    from snaps s
    left join visible_orders o
      on o.customer_id = s.customer_id
     and o.ordered_at >= s.as_of_date::timestamp
     and o.ordered_at < s.as_of_date::timestamp
         + to_days(cast({max(int(horizon_days), e)} as integer))
    group by s.as_of_date, s.customer_id
)
select snaps.*, (labels.n_orders = 0)::integer as label_churned, labels.value::double as label_value
{", (labels.n_orders_eval = 0)::integer as label_churned_eval, labels.value_eval::double as label_value_eval" if eval_days else ""}
from snaps join labels using (as_of_date, customer_id)
order by snaps.as_of_date, snaps.customer_id
"""


def build_training_set(
    con: duckdb.DuckDBPyConnection, snapshots: str, orders: str, plan: SlicePlan, horizon_days: int
) -> pd.DataFrame:
    """The labelled rows for every date of the plan, with `as_of_date` as Python dates.

    Labels cover the plan's label window (`horizon_days` for plans without one)."""
    horizon_days = plan.label_window or horizon_days
    eval_days = plan.evaluation_window if plan.evaluation_window != horizon_days else None
    checked = plan.final if eval_days else plan.all_dates
    for d in checked:
        if d + timedelta(days=horizon_days) > plan.cutoff:
            raise NotEnoughHistoryError(
                f"snapshot {d} has no complete label window before {plan.cutoff}"
            )
    frame = con.execute(
        training_set_sql(snapshots, orders, plan.all_dates, horizon_days, plan.cutoff, eval_days)
    ).df()
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"]).dt.date
    return add_season_index(con, orders, frame, horizon_days)


def season_offset(frame: pd.DataFrame, uses_season: bool) -> np.ndarray:
    """log of the seasonal index per row (0 when the model does not use it).

    The season multiplies the revenue level of every customer alike; applied outside the trees
    rather than as a feature, it carries over to calendar windows no training date covered.
    """
    if not uses_season:
        return np.zeros(len(frame))
    if SEASON_COLUMN not in frame.columns or frame[SEASON_COLUMN].isna().any():
        raise NotEnoughHistoryError(
            f"the model uses the seasonal index, which needs a year of orders before the "
            f"scoring date; {SEASON_COLUMN!r} is missing for some rows"
        )
    return np.log(np.clip(frame[SEASON_COLUMN].to_numpy(float), 1e-3, None))


def _lgb_params(config: TrainConfig, objective: str) -> dict:
    extra = (
        {"tweedie_variance_power": config.tweedie_variance_power} if objective == "tweedie" else {}
    )
    return {
        **extra,
        "objective": objective,
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "max_depth": config.max_depth,
        "min_data_in_leaf": config.min_data_in_leaf,
        "feature_fraction": config.feature_fraction,
        "lambda_l2": config.lambda_l2,
        "seed": config.seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": config.num_threads,
        "verbosity": -1,
        "cat_smooth": 10,
        "max_cat_to_onehot": 8,
    }


def _fit_booster(
    config: TrainConfig,
    objective: str,
    X: pd.DataFrame,
    y: np.ndarray,
    Xv: pd.DataFrame,
    yv: np.ndarray,
    offset: np.ndarray | None = None,
    offset_v: np.ndarray | None = None,
) -> lgb.Booster:
    train = lgb.Dataset(X, y, init_score=offset, free_raw_data=False)
    valid = lgb.Dataset(Xv, yv, init_score=offset_v, reference=train, free_raw_data=False)
    return lgb.train(
        _lgb_params(config, objective),
        train,
        num_boost_round=config.num_boost_round,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
    )


def _refit_booster(
    config: TrainConfig,
    objective: str,
    X: pd.DataFrame,
    y: np.ndarray,
    rounds: int,
    offset: np.ndarray | None = None,
) -> lgb.Booster:
    """The final fit on every labelled date: as many rounds as early stopping chose."""
    train = lgb.Dataset(X, y, init_score=offset, free_raw_data=False)
    return lgb.train(_lgb_params(config, objective), train, num_boost_round=max(int(rounds), 1))


#: Candidates per target, in the order ties are broken (a learnt model before a baseline).
CANDIDATES = ("blend", "lightgbm_bgnbd", "lightgbm", "ensemble", "bgnbd", "rfm")
BASELINES = ("bgnbd", "rfm")
#: The members of `ensemble`, averaged with equal weights (no weight to fit on a small
#: validation slice). Churn: the percentile ranks (per snapshot date) of the two LightGBM
#: classifiers, which err differently (one sees BG/NBD's outputs, one only the features), and
#: of BG/NBD's expected purchases over the horizon (fewest first), Platt-calibrated; BG/NBD's
#: expected purchases rank churn better than its own P(no purchase) on every CDNOW split, and
#: ranks put the three on one scale. Value: the two LightGBMs and BG/NBD x Gamma-Gamma, a
#: geometric mean (docs/models.md).
ENSEMBLE_MEMBERS = {
    "churn": ("lightgbm_bgnbd", "lightgbm", "bgnbd_expected_purchases"),
    "value": ("lightgbm_bgnbd", "lightgbm", "bgnbd"),
}
#: What each candidate needs fitted besides itself.
_NEEDS = {"blend": ("lightgbm_bgnbd", "bgnbd"), "ensemble": ("lightgbm_bgnbd", "lightgbm", "bgnbd")}
LIGHTGBM_METHODS = ("lightgbm_bgnbd", "lightgbm")
_EPS = 1e-4


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _expit(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, float)))


def carry_churn(p_window: np.ndarray, frame: pd.DataFrame, window: int, horizon: int) -> np.ndarray:
    """P(no purchase in `horizon` days) from P(no purchase in the `window`) per customer.

    The log-odds move by BG/NBD's own change between the two windows for that customer
    (its closed-form P(no purchase in t) for both t); customers BG/NBD has no summary for
    (no purchase yet) keep a constant hazard, p^(horizon/window).
    """
    p_window = np.asarray(p_window, float)
    if horizon == window:
        return p_window
    q_w, _ = _bgnbd_pair(frame, window, window)
    q_h, _ = _bgnbd_pair(frame, horizon, window)
    shifted = _expit(_logit(p_window) + _logit(q_h) - _logit(q_w))
    constant_hazard = np.clip(p_window, 0.0, 1.0) ** (horizon / window)
    return np.where(np.isfinite(q_w) & np.isfinite(q_h), shifted, constant_hazard)


def carry_ratio(frame: pd.DataFrame, window: int, horizon: int) -> np.ndarray:
    """Per-customer E[purchases in horizon] / E[purchases in window] from BG/NBD (the
    horizon scaling of a window's value); horizon/window where BG/NBD has no summary."""
    if horizon == window:
        return np.ones(len(frame))
    _, e_w = _bgnbd_pair(frame, window, window)
    _, e_h = _bgnbd_pair(frame, horizon, window)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = e_h / e_w
    return np.where(np.isfinite(ratio) & (e_w > 1e-9), ratio, horizon / window)


def rank_average(scores: Sequence[np.ndarray], dates: pd.Series | np.ndarray) -> np.ndarray:
    """Mean percentile rank (0..1, ties averaged) of each row under every score, ranked within
    its date; a score missing for a row (NaN: BG/NBD has no summary of a customer without a
    purchase) is left out of that row's mean."""
    keys = np.asarray(dates)
    ranks = [
        pd.Series(np.asarray(v, float)).groupby(keys).rank(pct=True).to_numpy() for v in scores
    ]
    stacked = np.vstack(ranks)
    known = np.isfinite(stacked)
    count = known.sum(axis=0)
    total = np.where(known, stacked, 0.0).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), 0.5)


def _bgnbd_pair(frame: pd.DataFrame, days: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    from tessera.ml.baselines import bgnbd_outputs

    return bgnbd_outputs(frame, days, window)


def _shift_to_mean(margin: np.ndarray, target_mean: float) -> float:
    """The intercept c with mean(expit(margin + c)) = target_mean (bisection; monotone in c)."""
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _expit(margin + mid).mean() < target_mean:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _horizon_matrix(spec: FeatureSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """The model matrix with the window's BG/NBD columns replaced by the horizon's."""
    swapped = frame.copy()
    swapped["bgnbd_p_no_purchase"] = frame["_bgnbd_p_no_purchase_h"]
    swapped["bgnbd_expected_purchases"] = frame["_bgnbd_expected_purchases_h"]
    return spec.matrix(swapped)


@dataclass
class ChurnModel:
    """P(no purchase in the horizon) from one of the candidates, Platt-calibrated where learnt.

    `method` names the candidate that scores: `lightgbm_bgnbd` (LightGBM over the shared
    features plus BG/NBD's outputs), `lightgbm` (the features alone), `bgnbd` or `rfm`. The
    booster always belongs to a LightGBM candidate: it gives the per-customer drivers (SHAP)
    even when a baseline wins. Trained on `label_window`-day labels; when the horizon is
    longer the probabilities are carried to it (`carry_churn`; for `lightgbm_bgnbd` the
    ranking comes from the model fed BG/NBD's horizon outputs and the mean from the carry).
    """

    spec: FeatureSpec
    booster: lgb.Booster
    platt: tuple[float, float] = (1.0, 0.0)
    method: str = "lightgbm_bgnbd"
    label_window: int | None = None
    horizon: int | None = None
    rfm: RFMBaseline | None = None
    nonbuyer_churn: float = 1.0
    #: For `blend`: the LightGBM-over-BG/NBD part and its weight on the log-odds scale
    #: (the rest is BG/NBD's), chosen on the validation slice.
    component: ChurnModel | None = None
    blend_weight: float = 1.0
    #: For `ensemble`: the member models (`ENSEMBLE_MEMBERS["churn"]`), averaged on the
    #: log-odds scale.
    members: tuple[ChurnModel, ...] = ()
    #: log-odds of BG/NBD's error on the newest complete label window (observed minus
    #: predicted): the level anchor of the learnt candidates when there is no seasonal level.
    anchor: float | None = None

    def raw_margin(self, frame: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(self.spec.matrix(frame), raw_score=True)

    def calibrate(self, margin: np.ndarray) -> np.ndarray:
        """Churn probability from the booster's raw log-odds."""
        a, b = self.platt
        # Platt scaling is monotone, so it fixes calibration without changing the ranking.
        return 1.0 / (1.0 + np.exp(-(a * np.asarray(margin, float) + b)))

    def _days(self, horizon: int | None) -> tuple[int, int]:
        window = getattr(self, "label_window", None) or getattr(self, "horizon", None)
        h = horizon or getattr(self, "horizon", None) or window
        return (window or h or 0), (h or 0)

    def predict(
        self, frame: pd.DataFrame, horizon: int | None = None, margin: np.ndarray | None = None
    ) -> np.ndarray:
        """P(no purchase in `horizon` days, default the model's) for a prepared frame;
        `margin` is the booster's raw score when the caller has it (SHAP row sums). With an
        `anchor` the mean is BG/NBD's at that horizon corrected by BG/NBD's error on the newest
        complete label window (score a date's customers together)."""
        window, h = self._days(horizon)
        anchor = getattr(self, "anchor", None)
        if anchor is not None:
            frame = self.spec.prepare(frame, h)
        p = self._predict_raw(frame, horizon, margin)
        if anchor is None or not len(p):
            return p
        q, _ = _bgnbd_pair(frame, h, window)
        target = np.where(np.isfinite(q), _expit(_logit(q) + anchor), p)
        z = _logit(p)
        return _expit(z + _shift_to_mean(z, float(target.mean())))

    def _predict_raw(
        self, frame: pd.DataFrame, horizon: int | None = None, margin: np.ndarray | None = None
    ) -> np.ndarray:
        method = getattr(self, "method", "lightgbm_bgnbd")
        window, h = self._days(horizon)
        if h != window or method in BASELINES:
            frame = self.spec.prepare(frame, h)
        if method in LIGHTGBM_METHODS:
            p_window = self.calibrate(self.raw_margin(frame) if margin is None else margin)
            if h == window or not window:
                return p_window
            carried = carry_churn(p_window, frame, window, h)
            if method == "lightgbm":
                return carried
            z = _logit(
                self.calibrate(
                    self.booster.predict(_horizon_matrix(self.spec, frame), raw_score=True)
                )
            )
            return _expit(z + _shift_to_mean(z, float(carried.mean())))
        if method == "bgnbd":
            q, _ = _bgnbd_pair(frame, h, window)
            fallback = self.nonbuyer_churn ** (h / window)
            return np.where(np.isfinite(q), q, fallback)
        if method == "rfm":
            p_window = self.rfm.predict(frame)["churn_probability"].to_numpy(float)
            return carry_churn(p_window, frame, window, h)
        if method == "blend":
            learnt = self.component.predict(frame, h)
            q, _ = _bgnbd_pair(frame, h, window)
            w = self.blend_weight
            mixed = _expit(w * _logit(learnt) + (1 - w) * _logit(q))
            return np.where(np.isfinite(q), mixed, learnt)
        if method == "ensemble":
            return self.calibrate(self.ensemble_margin(frame, h))
        raise RegistryError(f"unknown churn model method {method!r}")

    def ensemble_margin(self, frame: pd.DataFrame, horizon: int | None = None) -> np.ndarray:
        """For `ensemble`: the log-odds of the members' mean percentile rank (see
        `ENSEMBLE_MEMBERS`), which `platt` maps to a probability."""
        window, h = self._days(horizon)
        frame = self.spec.prepare(frame, h)
        _, expected = _bgnbd_pair(frame, h, window)
        probabilities = [member.predict(frame, h) for member in self.members]
        return _logit(rank_average([*probabilities, -expected], frame["as_of_date"]))

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per-customer, per-feature contributions to the churn log-odds (SHAP values).

        The last column, `_bias`, is the expected log-odds; a row's sum is its raw margin, so
        callers that need both get the probability without a second pass over the trees.
        """
        values = self.booster.predict(self.spec.matrix(frame), pred_contrib=True)
        return pd.DataFrame(values, columns=[*self.spec.features, "_bias"], index=frame.index)

    def importance(self) -> pd.Series:
        gain = pd.Series(self.booster.feature_importance("gain"), index=self.booster.feature_name())
        return (gain / gain.sum()).sort_values(ascending=False) if gain.sum() else gain


@dataclass
class ValueModel:
    """Revenue in the horizon from one of the candidates (`method`, as for `ChurnModel`).

    LightGBM candidates are Tweedie regressions (log link): the target is ~80% zeros plus a
    right-skewed positive part, the compound Poisson-gamma case Tweedie (1 < p < 2) models in
    one fit. `lightgbm_bgnbd` starts from BG/NBD x Gamma-Gamma's expected revenue as an offset
    (log) and learns corrections; at a horizon longer than the label window the offset is
    BG/NBD's expected revenue over the horizon, so the carry is BG/NBD's own. `lightgbm`
    is carried by the per-customer BG/NBD ratio `carry_ratio`. `scale` calibrates the total
    on the validation slice.

    With a year of orders before the first snapshot the *level* of each date's total comes
    from the shop's seasonal index instead: total(t) = customers(t) x `level` x
    season_index(t) x horizon/window, `level` being the revenue per customer per unit of index
    over the labelled dates (docs/models.md). `buy_model` is the churn model,
    for the 12-month CLV.
    """

    buy_model: ChurnModel
    booster: lgb.Booster | None
    horizon_days: int
    scale: float = 1.0
    #: Revenue per customer per unit of seasonal index; set when the season index is used.
    level: float | None = None
    method: str = "lightgbm"
    label_window: int | None = None
    spec: FeatureSpec | None = None
    rfm: RFMBaseline | None = None
    nonbuyer_value: float = 0.0
    #: For `blend`: the LightGBM-over-BG/NBD part and its weight (the rest is BG/NBD's).
    component: ValueModel | None = None
    blend_weight: float = 1.0
    #: For `ensemble`: the member models (`ENSEMBLE_MEMBERS["value"]`), averaged on the log scale
    #: (a geometric mean, so one member's outlier does not set the ranking).
    members: tuple[ValueModel, ...] = ()
    #: actual / BG/NBD x Gamma-Gamma revenue on the newest complete label window: the level
    #: anchor of the learnt candidates when there is no seasonal level.
    anchor: float | None = None

    def predict_churn(self, frame: pd.DataFrame) -> np.ndarray:
        return self.buy_model.predict(frame)

    def seasonal_level(self) -> float | None:
        """The seasonal level that sets this model's totals: its own, or for `blend` and
        `ensemble` that of the part whose per-date total they keep (None: no season used)."""
        part = self.component or (self.members[0] if getattr(self, "members", ()) else None)
        own = getattr(self, "level", None)
        return own if own is not None or part is None else part.seasonal_level()

    def _spec(self) -> FeatureSpec:
        return getattr(self, "spec", None) or self.buy_model.spec

    def predict(
        self,
        frame: pd.DataFrame,
        churn_probability: np.ndarray | None = None,
        horizon: int | None = None,
    ) -> np.ndarray:
        """Predicted revenue in `horizon` days (default the model's) per row; the seasonal level
        (or, without one, the `anchor`: BG/NBD x Gamma-Gamma's total at that horizon corrected
        by its error on the newest complete label window) is set over the rows given, so score
        every customer of a date together (as scoring and evaluation do).
        `churn_probability` is unused (former hurdle model)."""
        v = self._predict_raw(frame, horizon)
        anchor = getattr(self, "anchor", None)
        if anchor is None or not len(v):
            return v
        window = getattr(self, "label_window", None) or self.horizon_days
        h = horizon or self.horizon_days
        frame = self._spec().prepare(frame, h)
        _, e = _bgnbd_pair(frame, h, window)
        bg = e * frame["bgnbd_expected_spend"].to_numpy(float)
        known = np.isfinite(bg)
        target = anchor * bg[known].sum() + v[~known].sum()
        return v * (target / v.sum()) if v.sum() > 0 else v

    def _predict_raw(self, frame: pd.DataFrame, horizon: int | None = None) -> np.ndarray:
        method = getattr(self, "method", "lightgbm")
        window = getattr(self, "label_window", None) or self.horizon_days
        h = horizon or self.horizon_days
        if method in LIGHTGBM_METHODS and getattr(self, "booster", None) is None:
            raise RegistryError(
                "this value model was saved by an older Tessera (hurdle model): retrain it "
                "(materialize `models`, or remove it from the models folder)"
            )
        frame = self._spec().prepare(frame, h)
        if method == "bgnbd":
            _, e = _bgnbd_pair(frame, h, window)
            spend = frame["bgnbd_expected_spend"].to_numpy(float)
            value = e * spend
            return np.where(np.isfinite(value), value, self.nonbuyer_value * h / window)
        if method == "rfm":
            return rfm_value(frame, h)
        if method == "blend":
            learnt = self.component.predict(frame, horizon=h)
            _, e = _bgnbd_pair(frame, h, window)
            bg = e * frame["bgnbd_expected_spend"].to_numpy(float)
            w = self.blend_weight
            mixed = np.where(np.isfinite(bg), w * learnt + (1 - w) * np.nan_to_num(bg), learnt)
            if getattr(self.component, "level", None) is None:
                return self.scale * mixed
            return _at_part_totals(mixed, learnt, frame)
        if method == "ensemble":
            values = [member.predict(frame, horizon=h) for member in self.members]
            mixed = np.exp(np.mean([np.log(np.clip(v, 1e-3, None)) for v in values], axis=0))
            if getattr(self.members[0], "level", None) is None:
                return self.scale * mixed
            return _at_part_totals(mixed, values[0], frame)
        matrix = self._spec().matrix(frame)
        if method == "lightgbm_bgnbd":
            raw = np.exp(
                self.booster.predict(matrix, raw_score=True)
                + value_offset(frame, h, window, self.nonbuyer_value)
            )
        else:
            raw = self.booster.predict(matrix) * carry_ratio(frame, window, h)
        level = getattr(self, "level", None)
        if level is None:
            return self.scale * raw
        season = np.exp(season_offset(frame, True))
        keys = pd.to_datetime(frame["as_of_date"]).to_numpy()
        sums = pd.Series(raw).groupby(keys).transform("sum").to_numpy()
        counts = pd.Series(raw).groupby(keys).transform("size").to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(sums > 0, counts * level * season * (h / window) / sums, 0.0)
        return raw * factor


def _at_part_totals(mixed: np.ndarray, part: np.ndarray, frame: pd.DataFrame) -> np.ndarray:
    """`mixed` rescaled per date to the total of `part`: with a seasonal level the part's
    total per date is the better one, so a combination (`blend`, `ensemble`) keeps it and
    contributes only its ranking."""
    keys = pd.to_datetime(frame["as_of_date"]).to_numpy()
    part_total = pd.Series(part).groupby(keys).transform("sum").to_numpy()
    mixed_total = pd.Series(mixed).groupby(keys).transform("sum").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mixed_total > 0, mixed * part_total / mixed_total, 0.0)


def _scale_to_actual(model: ValueModel, frame: pd.DataFrame, window: int) -> None:
    """Set `model.scale` so that its total over `frame` (labels over `window`) is the actual
    total; left at 1 when it predicts nothing there."""
    model.scale = 1.0
    predicted = model.predict(frame, horizon=window)
    if predicted.sum() > 0:
        model.scale = float(frame["label_value"].sum() / predicted.sum())


def value_offset(frame: pd.DataFrame, days: int, window: int, nonbuyer_value: float) -> np.ndarray:
    """log of BG/NBD x Gamma-Gamma expected revenue over `days` (the never-buyers' mean
    revenue per window, scaled to `days`, where BG/NBD has no summary)."""
    _, e = _bgnbd_pair(frame, days, window)
    value = e * frame["bgnbd_expected_spend"].to_numpy(float)
    fallback = max(nonbuyer_value, 0.0) * days / window
    value = np.where(np.isfinite(value), value, fallback)
    return np.log(np.clip(value, 1e-3, None))


def clv_12m(value_h: np.ndarray, churn_probability: np.ndarray, horizon_days: int) -> np.ndarray:
    """12-month value: the H-day value repeated over 365/H periods with geometric retention.

    Period k's value is discounted by (1 - churn)^k: a simple, monotone extrapolation (it is
    not trained on 12-month labels, which the demo history is too short to provide).
    """
    periods = 365.0 / horizon_days
    s = np.clip(1.0 - np.asarray(churn_probability, float), 0.0, 0.999999)
    return np.asarray(value_h, float) * (1.0 - s**periods) / (1.0 - s)


@dataclass
class _Fitted:
    """The candidates of one fit (evaluation or final) and what they need to be refit."""

    churn: dict[str, ChurnModel]
    value: dict[str, ValueModel]
    rounds: dict[str, int]


@dataclass
class TrainingResult:
    """Everything one training run produces: models, held-out predictions and metrics."""

    churn: ChurnModel
    value: ValueModel
    plan: SlicePlan
    config: TrainConfig
    predictions: pd.DataFrame
    metrics: pd.DataFrame
    passed: bool
    verdict_message: str
    rows: dict[str, int] = field(default_factory=dict)
    #: The evaluation slice's features and labels, to judge a champion on the same rows.
    held_out: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: The candidate that scores, per target ("churn", "value").
    winners: dict[str, str] = field(default_factory=dict)
    #: What each fit used: the held-out evaluation fit and the final fit on every date.
    fits: dict[str, dict] = field(default_factory=dict)
    #: Notes for the output (e.g. no prior season to learn a peak from).
    notes: list[str] = field(default_factory=list)
    #: Every candidate of the final fit (only with `train_models(refit_all=True)`).
    final_candidates: _Fitted | None = None


def _sample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    return (
        frame
        if len(frame) <= max_rows
        else frame.sample(n=max_rows, random_state=seed).sort_index()
    )


def _platt(margin: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y)) < 2:
        return (1.0, 0.0)
    lr = LogisticRegression(C=1e6, solver="lbfgs").fit(margin.reshape(-1, 1), y)
    return (float(lr.coef_[0, 0]), float(lr.intercept_[0]))


def _newest(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the newest snapshot date."""
    return frame[frame["as_of_date"] == frame["as_of_date"].max()]


def _split_validation(fit: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A fifth of the customers (stable hash) when the history has one fit date only."""
    bucket = pd.util.hash_pandas_object(fit["customer_id"].astype(str), index=False) % 5
    held = (bucket == seed % 5).to_numpy()
    return fit[~held], fit[held]


def _fit_candidates(
    train: pd.DataFrame,
    valid: pd.DataFrame | None,
    config: TrainConfig,
    window: int,
    horizon: int,
    uses_season: bool,
    methods: Sequence[str] = CANDIDATES,
    reuse: _Fitted | None = None,
    value_methods: Sequence[str] | None = None,
    churn_methods: Sequence[str] | None = None,
) -> _Fitted:
    """Fit the candidates on `train` (early stopping and calibration on `valid`), or, with
    `reuse` and no `valid`, refit them on `train` with the rounds, calibration and scale the
    evaluation fit chose. `value_methods` and `churn_methods` (default: `methods`) limit the
    value models and the churn boosters fitted."""
    full_spec = FeatureSpec.from_frame(train, window)
    plain_spec = FeatureSpec.from_frame(train, window, exclude=BGNBD_FEATURES)
    specs = {"lightgbm_bgnbd": full_spec, "lightgbm": plain_spec}
    y = train["label_churned"].to_numpy(float)
    yv_value = None
    nonbuyer = train["orders_total"].fillna(0) <= 0
    nonbuyer_churn = float(train.loc[nonbuyer, "label_churned"].mean()) if nonbuyer.any() else 1.0
    nonbuyer_value = float(train.loc[nonbuyer, "label_value"].mean()) if nonbuyer.any() else 0.0
    churn: dict[str, ChurnModel] = {}
    value: dict[str, ValueModel] = {}
    rounds: dict[str, int] = {}
    value_config = replace(
        config,
        num_leaves=config.value_num_leaves,
        max_depth=-1,
        learning_rate=config.value_learning_rate,
    )
    learnt = [m for m in LIGHTGBM_METHODS if m in methods]
    # The drivers need a booster even when only baselines are asked for.
    # The first learnt one explains the scores (drivers), so it is always fitted.
    churn_boosters = [
        m for m in learnt if m == learnt[0] or churn_methods is None or m in churn_methods
    ] or ["lightgbm_bgnbd"]
    for method in churn_boosters:
        spec = specs[method]
        X = spec.matrix(train)
        if reuse is None:
            yv = valid["label_churned"].to_numpy(float)
            booster = _fit_booster(config, "binary", X, y, spec.matrix(valid), yv)
            model = ChurnModel(spec, booster, method=method, label_window=window, horizon=horizon)
            model.platt = _platt(model.raw_margin(valid), yv)
            rounds[f"churn_{method}"] = booster.best_iteration or config.num_boost_round
        else:
            old = reuse.churn[method]
            booster = _refit_booster(config, "binary", X, y, reuse.rounds[f"churn_{method}"])
            model = replace(old, spec=spec, booster=booster, label_window=window)
            rounds[f"churn_{method}"] = reuse.rounds[f"churn_{method}"]
            # The level drifts as customers age: calibrate on the newest complete label
            # window, the behaviour closest to the scoring date (monotone, so the ranking
            # is unchanged).
            newest = _newest(train)
            model.platt = _platt(model.raw_margin(newest), newest["label_churned"].to_numpy(float))
        churn[method] = model
    explainer = churn[churn_boosters[0]]
    if "rfm" in methods:
        rfm = RFMBaseline(window).fit(train)
        churn["rfm"] = replace(explainer, method="rfm", rfm=rfm, anchor=None)
    if "bgnbd" in methods:
        churn["bgnbd"] = replace(
            explainer, method="bgnbd", nonbuyer_churn=nonbuyer_churn, anchor=None
        )
    if "blend" in methods:
        weight = (
            reuse.churn["blend"].blend_weight
            if reuse is not None
            else _best_weight(
                churn["lightgbm_bgnbd"].predict(valid, window),
                churn["bgnbd"].predict(valid, window),
                valid["label_churned"].to_numpy(float),
                lambda y, a, b, w: _auc(y, _expit(w * _logit(a) + (1 - w) * _logit(b))),
            )
        )
        churn["blend"] = replace(
            explainer, method="blend", component=churn["lightgbm_bgnbd"], blend_weight=weight
        )
    if "ensemble" in methods:
        ensemble = replace(
            explainer,
            method="ensemble",
            members=tuple(churn[m] for m in ENSEMBLE_MEMBERS["churn"] if m in churn),
            anchor=None,
        )
        calibrate_on = valid if reuse is None else _newest(train)
        ensemble.platt = _platt(
            ensemble.ensemble_margin(calibrate_on, window),
            calibrate_on["label_churned"].to_numpy(float),
        )
        churn["ensemble"] = ensemble

    if reuse is None:
        if (train["label_value"] > 0).sum() < 20 or (valid["label_value"] > 0).sum() < 5:
            raise NotEnoughHistoryError(
                f"too few buyers to fit the value model ({int((train['label_value'] > 0).sum())} "
                "in training)"
            )
        yv_value = valid["label_value"].to_numpy(float)
    y_value = train["label_value"].to_numpy(float)
    value_methods = methods if value_methods is None else value_methods
    for method in (m for m in learnt if m in value_methods):
        spec = specs[method]
        X = spec.matrix(train)
        offset = (
            value_offset(train, window, window, nonbuyer_value)
            if method == "lightgbm_bgnbd"
            else None
        )
        key = f"value_{method}"
        if reuse is None:
            offset_v = (
                value_offset(valid, window, window, nonbuyer_value)
                if method == "lightgbm_bgnbd"
                else None
            )
            booster = _fit_booster(
                value_config, "tweedie", X, y_value, spec.matrix(valid), yv_value, offset, offset_v
            )
            rounds[key] = booster.best_iteration or config.num_boost_round
            model = ValueModel(
                churn[method],
                booster,
                horizon,
                method=method,
                label_window=window,
                spec=spec,
                nonbuyer_value=nonbuyer_value,
            )
            if uses_season:
                labelled = pd.concat([train, valid])
                model.level = float(
                    labelled["label_value"].sum() / labelled[SEASON_COLUMN].astype(float).sum()
                )
            else:
                _scale_to_actual(model, valid, window)
        else:
            old = reuse.value[method]
            rounds[key] = reuse.rounds[key]
            booster = _refit_booster(value_config, "tweedie", X, y_value, rounds[key], offset)
            model = replace(
                old,
                buy_model=churn.get(method, explainer),
                booster=booster,
                spec=spec,
                nonbuyer_value=nonbuyer_value,
                label_window=window,
            )
            if uses_season:
                model.level = float(y_value.sum() / train[SEASON_COLUMN].astype(float).sum())
            else:
                # As for churn: the total of the newest complete label window sets the level.
                _scale_to_actual(model, _newest(train), window)
        value[method] = model
    if "rfm" in value_methods:
        value["rfm"] = ValueModel(
            churn.get("rfm", explainer), None, horizon, method="rfm", label_window=window
        )
    if {"bgnbd", "blend", "ensemble"} & set(value_methods):
        value["bgnbd"] = ValueModel(
            churn.get("bgnbd", explainer),
            None,
            horizon,
            method="bgnbd",
            label_window=window,
            nonbuyer_value=nonbuyer_value,
        )
    if "blend" in value_methods:
        part = value["lightgbm_bgnbd"]
        blend = ValueModel(
            churn.get("blend", explainer),
            None,
            horizon,
            method="blend",
            label_window=window,
            component=part,
            nonbuyer_value=nonbuyer_value,
        )
        calibrate_on = valid if reuse is None else _newest(train)
        if reuse is None:
            blend.blend_weight = _best_weight(
                part.predict(valid, horizon=window),
                value["bgnbd"].predict(valid, horizon=window),
                yv_value,
                lambda y, a, b, w: _top_share(y, w * a + (1 - w) * b),
            )
        else:
            blend.blend_weight = reuse.value["blend"].blend_weight
        _scale_to_actual(blend, calibrate_on, window)
        value["blend"] = blend
    if "ensemble" in value_methods:
        ensemble = ValueModel(
            churn.get("ensemble", explainer),
            None,
            horizon,
            method="ensemble",
            label_window=window,
            members=tuple(value[m] for m in ENSEMBLE_MEMBERS["value"]),
            nonbuyer_value=nonbuyer_value,
        )
        _scale_to_actual(ensemble, valid if reuse is None else _newest(train), window)
        value["ensemble"] = ensemble
    if not uses_season:
        newest = _newest(valid if reuse is None else train)
        churn_anchor, value_anchor = _bgnbd_errors(newest, window)
        for method, model in churn.items():
            if method not in BASELINES:
                model.anchor = churn_anchor
        for method, model in value.items():
            if method not in BASELINES:
                model.anchor = value_anchor
    return _Fitted(churn, value, rounds)


def _bgnbd_errors(newest: pd.DataFrame, window: int) -> tuple[float | None, float | None]:
    """BG/NBD's level errors on the newest complete label window: observed minus predicted
    churn in log-odds, and actual over predicted revenue (None where it has no prediction)."""
    q, e = _bgnbd_pair(newest, window, window)
    known = np.isfinite(q)
    if known.sum() < 10:
        return None, None
    observed = float(newest["label_churned"].to_numpy(float)[known].mean())
    churn_error = float(_logit(np.array([observed]))[0] - _logit(np.array([q[known].mean()]))[0])
    bg = (e * newest["bgnbd_expected_spend"].to_numpy(float))[known]
    actual = float(newest["label_value"].to_numpy(float)[known].sum())
    value_error = actual / float(bg.sum()) if bg.sum() > 0 else None
    return churn_error, value_error


def level_check(frame: pd.DataFrame, window: int) -> dict | None:
    """How steady the revenue anchor is over the history (None with fewer than two dates).

    Per labelled date of `frame` (labels and BG/NBD columns over `window`): BG/NBD x
    Gamma-Gamma's revenue error, actual over predicted (`_bgnbd_errors`), and the anchoring
    replayed on the history itself: each date's total predicted with the error of the newest
    date whose window had closed by then, against that date's actual total. Without a prior
    season this spread is the measured uncertainty of the predicted total: a level that moved
    that much between windows of the history can move as much into the horizon.
    """
    ratios: list[tuple[pd.Timestamp, float]] = []
    for day, rows in frame.groupby("as_of_date", sort=True):
        _, value_error = _bgnbd_errors(rows, window)
        if value_error is not None and value_error > 0:
            ratios.append((pd.Timestamp(day), value_error))
    if len(ratios) < 2:
        return None
    gap = pd.Timedelta(days=window)
    replayed = []
    for day, ratio in ratios:
        earlier = [r for d, r in ratios if d + gap <= day]
        if earlier:
            replayed.append(earlier[-1] / ratio - 1.0)
    values = np.array([r for _, r in ratios])
    out: dict = {
        "window_days": window,
        "dates": len(ratios),
        "ratio_newest": round(float(values[-1]), 3),
        "ratio_min": round(float(values.min()), 3),
        "ratio_max": round(float(values.max()), 3),
        "replayed": len(replayed),
    }
    if replayed:
        errors = 100 * np.array(replayed)
        out |= {
            "replayed_error_pct_min": round(float(errors.min()), 1),
            "replayed_error_pct_median": round(float(np.median(errors)), 1),
            "replayed_error_pct_max": round(float(errors.max()), 1),
        }
    return out


def describe_level_check(check: dict | None) -> str:
    """The output's sentence for `level_check` (empty when there is nothing to say)."""
    if not check:
        return ""
    text = (
        f"the revenue total follows BG/NBD x Gamma-Gamma's error on the newest "
        f"{check['window_days']}-day window (actual/predicted {check['ratio_newest']:.2f}); "
        f"over the history's {check['dates']} labelled dates it ranged "
        f"{check['ratio_min']:.2f} .. {check['ratio_max']:.2f}"
    )
    if check.get("replayed"):
        text += (
            f", and the same anchoring replayed on {check['replayed']} of those dates missed "
            f"their totals by {check['replayed_error_pct_min']:+.0f}% .. "
            f"{check['replayed_error_pct_max']:+.0f}% "
            f"(median {check['replayed_error_pct_median']:+.0f}%)"
        )
    return text + ": a peak or trough in the horizon moves the total by as much"


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else 0.0


def _top_share(y: np.ndarray, v: np.ndarray) -> float:
    """Share of the actual total earned by the tenth ranked highest."""
    n = max(len(y) // 10, 1)
    top = np.argsort(-np.asarray(v, float), kind="stable")[:n]
    total = float(np.sum(y))
    return float(np.sum(np.asarray(y)[top]) / total) if total > 0 else 0.0


def _best_weight(a: np.ndarray, b: np.ndarray, y: np.ndarray, score) -> float:
    """The weight in 0, 0.1, .., 1 of `a` (the rest `b`) that scores best on the validation
    rows (where `b` is defined); ties go to the higher weight."""
    ok = np.isfinite(b)
    a, b, y = np.asarray(a)[ok], np.asarray(b)[ok], np.asarray(y)[ok]
    if not len(y):
        return 1.0
    grid = np.round(np.linspace(1.0, 0.0, 11), 1)
    scores = [score(y, a, b, w) for w in grid]
    return float(grid[int(np.argmax(scores))])


def select_winners(table: pd.DataFrame) -> dict[str, str]:
    """The best candidate per target on the held-out slice (ties: the order of CANDIDATES)."""
    winners = {}
    for kind, metric in SELECTION_METRIC.items():
        scores = table[metric].reindex([m for m in CANDIDATES if m in table.index])
        scores = scores.fillna(-np.inf)
        winners[kind] = str(scores.idxmax())
    return winners


def train_models(
    training_set: pd.DataFrame, plan: SlicePlan, config: TrainConfig, refit_all: bool = False
) -> TrainingResult:
    """Fit every candidate on the plan's training slice, compare them on the held-out slice,
    then refit the winners on every labelled date (the final fit) for scoring; `refit_all`
    refits every candidate (`final_candidates`), to compare them on a later outcome."""
    window, horizon = plan.window, plan.horizon or config.horizon_days
    eval_window = plan.evaluation_window
    methods = CANDIDATES if config.bgnbd_features else ("lightgbm", "bgnbd", "rfm")
    columns = feature_columns(training_set)
    labelled = training_set
    if eval_window != window:
        # The held-out check learns and is judged on its own, shorter labels.
        labelled = training_set.assign(
            label_churned=training_set["label_churned_eval"],
            label_value=training_set["label_value_eval"],
        ).drop(columns=["label_churned_eval", "label_value_eval"])
        training_set = training_set.drop(columns=["label_churned_eval", "label_value_eval"])
    dates = labelled["as_of_date"]
    fit = labelled[dates.isin(plan.train)]
    valid = labelled[dates.isin(plan.valid)]
    held_out = labelled[dates.isin(plan.evaluation)]
    if valid.empty and not fit.empty:
        fit, valid = _split_validation(fit, config.seed)
    train = _sample(fit, config.max_train_rows, config.seed)
    final_dates = plan.final or plan.all_dates
    final_sample = _sample(
        training_set[training_set["as_of_date"].isin(final_dates)],
        config.max_train_rows,
        config.seed,
    ).index
    # BG/NBD's columns only for the rows used (each date still fitted on all its rows).
    used = train.index.union(valid.index).union(held_out.index)
    if eval_window == window:
        used = used.union(final_sample)
    prepared = FeatureSpec(columns, bgnbd_horizon=eval_window).prepare(
        labelled.loc[used], eval_window, fit_on=labelled
    )
    train, valid, held_out = (prepared.loc[part.index] for part in (train, valid, held_out))
    if train.empty or valid.empty or held_out.empty:
        raise NotEnoughHistoryError(
            f"empty slice: train {len(train)}, validation {len(valid)}, evaluation {len(held_out)} rows"
        )
    uses_season = bool(
        config.seasonality
        and SEASON_COLUMN in training_set.columns
        and training_set[SEASON_COLUMN].notna().all()
    )
    notes = []
    if config.seasonality and not uses_season:
        log.warning("less than a year of orders before the first snapshot: no seasonal offset")
    evaluation_fit = _fit_candidates(
        train, valid, config, eval_window, horizon, uses_season, methods
    )
    predictions = candidate_predictions(
        evaluation_fit.churn, evaluation_fit.value, held_out, eval_window
    )
    table = compare_models(predictions)
    winners = select_winners(table)
    result = verdict(table, winners)
    log.info("training cut-off %s: %s", plan.cutoff, result.message)

    # The final fit: the winners (and the booster that explains churn) on every labelled date.
    if eval_window == window:
        # Same labels and BG/NBD columns: the check's prepared rows serve the final fit.
        everything = prepared.loc[final_sample]
    else:
        everything = FeatureSpec(columns, bgnbd_horizon=window).prepare(
            training_set.loc[final_sample], window, fit_on=training_set
        )
    needed = {winners["churn"], winners["value"]}
    needed |= {n for m in list(needed) for n in _NEEDS.get(m, ())}
    final_methods = tuple(m for m in methods if refit_all or m in needed or m == "lightgbm_bgnbd")
    # Churn boosters the scores need: the churn winner's and the drivers' (lightgbm_bgnbd);
    # a value winner that needs plain LightGBM needs its value booster only.
    churn_needed = {winners["churn"], *_NEEDS.get(winners["churn"], ()), "lightgbm_bgnbd"}
    final = _fit_candidates(
        everything,
        None,
        config,
        window,
        horizon,
        uses_season,
        final_methods,
        evaluation_fit,
        value_methods=None if refit_all else (winners["value"], *_NEEDS.get(winners["value"], ())),
        churn_methods=None if refit_all else tuple(churn_needed),
    )
    churn_model = final.churn[winners["churn"]]
    value_model = final.value[winners["value"]]
    if not uses_season and (winners["churn"] in BASELINES or winners["value"] in BASELINES):
        # A baseline that wins scores as it ranks, at the level its own error on the newest
        # complete label window says (a scalar: the ranking, and so the comparison, is its own).
        churn_anchor, value_anchor = _bgnbd_errors(_newest(everything), window)
        if winners["churn"] in BASELINES:
            churn_model = replace(churn_model, anchor=churn_anchor)
            notes.append(f"churn level of {winners['churn']} anchored on the newest label window")
        if winners["value"] in BASELINES:
            value_model = replace(value_model, anchor=value_anchor)
            notes.append(f"value level of {winners['value']} anchored on the newest label window")
    value_model.buy_model = churn_model
    # Without a seasonal index the total is anchored: say how steady that anchor was.
    level = None if uses_season else level_check(everything, window)
    if config.seasonality and not uses_season:
        said = describe_level_check(level)
        notes.insert(
            0,
            "no prior season: the history has less than a year of orders before the first "
            "snapshot, so no seasonal peak is learnt or extrapolated"
            + (f"; {said}" if said else " (totals follow the recent level)"),
        )
    fits = {
        "evaluation": {
            "train_dates": [d.isoformat() for d in sorted(set(fit["as_of_date"]))],
            "validation_dates": [d.isoformat() for d in plan.valid],
            "evaluation_dates": [d.isoformat() for d in plan.evaluation],
            "label_window_days": eval_window,
            "rows": {"train": len(train), "valid": len(valid), "evaluation": len(held_out)},
            "rounds": evaluation_fit.rounds,
        },
        "final": {
            "dates": [d.isoformat() for d in sorted(set(everything["as_of_date"]))],
            "rows": len(everything),
            "label_window_days": window,
            "rounds": final.rounds,
            "models": {"churn": winners["churn"], "value": winners["value"]},
            "level_check": level,
        },
    }
    return TrainingResult(
        churn=churn_model,
        value=value_model,
        plan=plan,
        config=config,
        predictions=predictions,
        metrics=table,
        passed=result.passed,
        verdict_message=result.message,
        rows={
            "train": len(train),
            "valid": len(valid),
            "evaluation": len(held_out),
            "final": len(everything),
        },
        held_out=held_out.reset_index(drop=True),
        winners=winners,
        fits=fits,
        notes=notes,
        final_candidates=final if refit_all else None,
    )


def candidate_predictions(
    churn: dict[str, ChurnModel],
    value: dict[str, ValueModel],
    frame: pd.DataFrame,
    horizon: int,
) -> pd.DataFrame:
    """Every candidate's predictions over `horizon` days side by side, with the outcomes."""
    out = frame[["as_of_date", "customer_id", "label_churned", "label_value"]].copy()
    for method in CANDIDATES:
        if method in churn:
            out[f"churn_{method}"] = churn[method].predict(frame, horizon)
        if method in value:
            out[f"value_{method}"] = value[method].predict(frame, horizon=horizon)
    return out.reset_index(drop=True)
