"""Point-in-time training sets, LightGBM churn and value models, and their held-out evaluation."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta

import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd

from ml.baselines import BGNBDBaseline, RFMBaseline, add_bgnbd_features
from ml.errors import NotEnoughHistoryError, RegistryError
from ml.evaluation import compare_models, verdict
from ml.features import SEASON_COLUMN, FeatureSpec, add_season_index

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters and the time layout of one training run."""

    horizon_days: int = 90
    train_dates: int = 8
    valid_dates: int = 2
    eval_dates: int = 1
    num_boost_round: int = 200
    learning_rate: float = 0.2
    #: Shallow trees: TreeSHAP (the per-customer drivers stored with every daily score) costs
    #: about depth^2 per tree and row; depth 3 scores 20k customers' drivers in a few seconds
    #: with the same held-out AUC and Spearman as 15-leaf trees of any depth (README.md, "Predictive models").
    num_leaves: int = 8
    max_depth: int = 3
    #: The value model stores no per-customer contributions, so its trees may be deeper; a
    #: slower rate because early stopping on the Tweedie loss comes within ~100 rounds.
    value_num_leaves: int = 15
    value_learning_rate: float = 0.05
    tweedie_variance_power: float = 1.5
    min_data_in_leaf: int = 50
    feature_fraction: float = 0.9
    lambda_l2: float = 1.0
    early_stopping_rounds: int = 30
    #: Feed BG/NBD P(alive) and expected purchases to LightGBM as features.
    bgnbd_features: bool = True
    #: Scale predictions by the shop's seasonal index of the label window (needs a year of orders).
    seasonality: bool = True
    max_train_rows: int = 300_000
    seed: int = 42
    #: One thread: LightGBM's OpenMP threads spin badly when the cores are shared with
    #: other pipeline steps, and one thread is also bit-for-bit reproducible.
    num_threads: int = 1

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SlicePlan:
    """Snapshot dates used to train, validate (early stopping, calibration) and evaluate.

    The evaluation dates are the newest with a complete label window before `cutoff`; train and
    validation dates end at least one horizon before them, so their label windows close before
    the evaluation slice starts (`overlapping_labels` says when history was too short for that).
    """

    cutoff: date
    train: list[date]
    valid: list[date]
    evaluation: list[date]
    overlapping_labels: bool

    @property
    def all_dates(self) -> list[date]:
        return sorted(self.train + self.valid + self.evaluation)


def plan_slices(
    dates: Sequence[date],
    as_of: date,
    horizon_days: int,
    train_dates: int = 8,
    valid_dates: int = 2,
    eval_dates: int = 1,
) -> SlicePlan:
    """Choose the snapshot dates for a model trained at `as_of` (its training cut-off)."""
    last_usable = as_of - timedelta(days=horizon_days)
    usable = sorted({d for d in dates if d <= last_usable})
    if len(usable) < eval_dates + 2:
        raise NotEnoughHistoryError(
            f"not enough history to train for as-of {as_of} with a {horizon_days}-day horizon: "
            f"{len(usable)} snapshot date(s) on or before {last_usable}, need at least "
            f"{eval_dates + 2} (earliest snapshot: {min(dates) if dates else 'none'})"
        )
    evaluation = usable[-eval_dates:]
    strict = [d for d in usable if d <= evaluation[0] - timedelta(days=horizon_days)]
    overlapping = len(strict) < 2
    fit = strict if not overlapping else [d for d in usable if d < evaluation[0]]
    if overlapping:
        log.warning(
            "history too short for label windows that end before the evaluation slice %s; "
            "training on earlier snapshots whose label windows overlap it",
            evaluation[0],
        )
    n_valid = min(valid_dates, len(fit) - 1)
    valid = fit[len(fit) - n_valid :]
    train = fit[: len(fit) - n_valid][-train_dates:]
    return SlicePlan(as_of, train, valid, evaluation, overlapping)


def training_set_sql(
    snapshots: str, orders: str, dates: Sequence[date], horizon_days: int, as_of: date
) -> str:
    """Features as of each date t plus labels from [t, t+H): churned (no purchase), value.

    `orders` is a relation with customer_id, ordered_at and amount of revenue-bearing orders.
    Orders at or after `as_of` are never read, whatever the dates asked for.
    """
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
           count(o.customer_id) as n_orders, coalesce(sum(o.amount), 0) as value
    from snaps s
    left join visible_orders o
      on o.customer_id = s.customer_id
     and o.ordered_at >= s.as_of_date::timestamp
     and o.ordered_at < s.as_of_date::timestamp + to_days(cast({int(horizon_days)} as integer))
    group by s.as_of_date, s.customer_id
)
select snaps.*, (labels.n_orders = 0)::integer as label_churned, labels.value::double as label_value
from snaps join labels using (as_of_date, customer_id)
order by snaps.as_of_date, snaps.customer_id
"""


def build_training_set(
    con: duckdb.DuckDBPyConnection, snapshots: str, orders: str, plan: SlicePlan, horizon_days: int
) -> pd.DataFrame:
    """The labelled rows for every date of the plan, with `as_of_date` as Python dates."""
    for d in plan.all_dates:
        if d + timedelta(days=horizon_days) > plan.cutoff:
            raise NotEnoughHistoryError(
                f"snapshot {d} has no complete label window before {plan.cutoff}"
            )
    frame = con.execute(
        training_set_sql(snapshots, orders, plan.all_dates, horizon_days, plan.cutoff)
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


@dataclass
class ChurnModel:
    """LightGBM churn classifier with Platt scaling fitted on the later validation slice."""

    spec: FeatureSpec
    booster: lgb.Booster
    platt: tuple[float, float] = (1.0, 0.0)

    def raw_margin(self, frame: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(self.spec.matrix(frame), raw_score=True)

    def calibrate(self, margin: np.ndarray) -> np.ndarray:
        """Churn probability from the booster's raw log-odds."""
        a, b = self.platt
        # Platt scaling is monotone, so it fixes calibration without changing the ranking.
        return 1.0 / (1.0 + np.exp(-(a * np.asarray(margin, float) + b)))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.calibrate(self.raw_margin(frame))

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
    """H-day revenue: a LightGBM Tweedie regression for the ranking, a seasonal level for the
    total.

    Why Tweedie: the target is ~80% zeros plus a right-skewed positive part, which is the
    compound Poisson-gamma case Tweedie (1 < p < 2, log link) models in one fit; on the demo
    shop it ranks revenue better (Spearman) than the P(buy) x E[revenue | buy] hurdle it
    replaced, whose spend part multiplied basket-size noise into the ranking.

    The booster ranks and splits the revenue between customers; the *level* of each date's
    total comes from the shop's seasonal index: total(t) = customers(t) x `level` x
    season_index(t), `level` being the revenue per customer per unit of index over all the
    labelled training and validation dates. Why: the features are seasonal too (a customer's
    last 90 days in August are the summer lull), so a level learnt on one slice carries that
    slice's season into the next; the index measured a year earlier on the same customers does
    not (README.md, "Predictive models" has the measurements). Without a year of history the level is the
    validation slice's (`scale`). `buy_model` is the churn model, for the 12-month CLV.
    """

    buy_model: ChurnModel
    booster: lgb.Booster
    horizon_days: int
    scale: float = 1.0
    #: Revenue per customer per unit of seasonal index; set when the season index is used.
    level: float | None = None

    def predict_churn(self, frame: pd.DataFrame) -> np.ndarray:
        return self.buy_model.predict(frame)

    def predict(
        self, frame: pd.DataFrame, churn_probability: np.ndarray | None = None
    ) -> np.ndarray:
        """Predicted H-day revenue per row; the level is set per as_of_date over the rows
        given, so score every customer of a date together (as scoring and evaluation do).
        `churn_probability` is accepted for callers of the former hurdle model and unused."""
        if not hasattr(self, "booster"):
            raise RegistryError(
                "this value model was saved by an older Tessera (hurdle model): retrain it "
                "(materialize `models`, or remove it from the models folder)"
            )
        raw = self.booster.predict(self.buy_model.spec.matrix(frame))
        level = getattr(self, "level", None)
        if level is None:
            return self.scale * raw
        season = np.exp(season_offset(frame, True))
        keys = pd.to_datetime(frame["as_of_date"]).to_numpy()
        sums = pd.Series(raw).groupby(keys).transform("sum").to_numpy()
        counts = pd.Series(raw).groupby(keys).transform("size").to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(sums > 0, counts * level * season / sums, 0.0)
        return raw * factor


def clv_12m(value_h: np.ndarray, churn_probability: np.ndarray, horizon_days: int) -> np.ndarray:
    """12-month value: the H-day value repeated over 365/H periods with geometric retention.

    Period k's value is discounted by (1 - churn)^k: a simple, monotone extrapolation (it is
    not trained on 12-month labels, which the demo history is too short to provide).
    """
    periods = 365.0 / horizon_days
    s = np.clip(1.0 - np.asarray(churn_probability, float), 0.0, 0.999999)
    return np.asarray(value_h, float) * (1.0 - s**periods) / (1.0 - s)


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


def train_models(
    training_set: pd.DataFrame, plan: SlicePlan, config: TrainConfig
) -> TrainingResult:
    """Fit churn and value models on the plan's slices and evaluate them and both baselines."""
    if config.bgnbd_features:
        training_set = add_bgnbd_features(training_set, config.horizon_days)
    dates = training_set["as_of_date"]
    train = _sample(training_set[dates.isin(plan.train)], config.max_train_rows, config.seed)
    valid = training_set[dates.isin(plan.valid)]
    held_out = training_set[dates.isin(plan.evaluation)]
    if train.empty or valid.empty or held_out.empty:
        raise NotEnoughHistoryError(
            f"empty slice: train {len(train)}, validation {len(valid)}, evaluation {len(held_out)} rows"
        )
    spec = FeatureSpec.from_frame(
        training_set, config.horizon_days if config.bgnbd_features else None
    )
    X, Xv = spec.matrix(train), spec.matrix(valid)
    y, yv = train["label_churned"].to_numpy(float), valid["label_churned"].to_numpy(float)
    uses_season = bool(
        config.seasonality
        and SEASON_COLUMN in training_set.columns
        and training_set[SEASON_COLUMN].notna().all()
    )
    if config.seasonality and not uses_season:
        log.warning("less than a year of orders before the first snapshot: no seasonal offset")
    booster = _fit_booster(config, "binary", X, y, Xv, yv)
    churn = ChurnModel(spec, booster)
    churn.platt = _platt(churn.raw_margin(valid), yv)

    if (train["label_value"] > 0).sum() < 20 or (valid["label_value"] > 0).sum() < 5:
        raise NotEnoughHistoryError(
            f"too few buyers to fit the value model ({int((train['label_value'] > 0).sum())} "
            "in training)"
        )
    value_config = replace(
        config,
        num_leaves=config.value_num_leaves,
        max_depth=-1,
        learning_rate=config.value_learning_rate,
    )
    value_booster = _fit_booster(
        value_config,
        "tweedie",
        X,
        train["label_value"].to_numpy(float),
        Xv,
        valid["label_value"].to_numpy(float),
    )
    value = ValueModel(churn, value_booster, config.horizon_days)
    if uses_season:
        labelled = pd.concat([train, valid])
        value.level = float(
            labelled["label_value"].sum() / labelled[SEASON_COLUMN].astype(float).sum()
        )
    else:
        predicted_valid = value.predict(valid)
        if predicted_valid.sum() > 0:
            value.scale = float(valid["label_value"].sum() / predicted_valid.sum())

    predictions = predict_with_baselines(churn, value, train, held_out, config.horizon_days)
    table = compare_models(predictions)
    result = verdict(table)
    log.info("training cut-off %s: %s", plan.cutoff, result.message)
    return TrainingResult(
        churn=churn,
        value=value,
        plan=plan,
        config=config,
        predictions=predictions,
        metrics=table,
        passed=result.passed,
        verdict_message=result.message,
        rows={"train": len(train), "valid": len(valid), "evaluation": len(held_out)},
        held_out=held_out.reset_index(drop=True),
    )


def predict_with_baselines(
    churn: ChurnModel,
    value: ValueModel,
    train: pd.DataFrame,
    held_out: pd.DataFrame,
    horizon_days: int,
) -> pd.DataFrame:
    """Held-out predictions of LightGBM and both baselines side by side, with the outcomes."""
    held_out = churn.spec.prepare(held_out)
    out = held_out[["as_of_date", "customer_id", "label_churned", "label_value"]].copy()
    out["churn_lightgbm"] = churn.predict(held_out)
    out["value_lightgbm"] = value.predict(held_out, out["churn_lightgbm"].to_numpy())
    rfm = RFMBaseline(horizon_days).fit(train).predict(held_out)
    out["churn_rfm"], out["value_rfm"] = rfm["churn_probability"], rfm["predicted_value"]
    bg = BGNBDBaseline(horizon_days).fit_nonbuyers(train)
    # BG/NBD is fitted per snapshot date on that date's history only (it needs no labels).
    parts = [bg.predict(group) for _, group in held_out.groupby("as_of_date", sort=True)]
    bgp = pd.concat(parts).reindex(held_out.index)
    out["churn_bgnbd"], out["value_bgnbd"] = bgp["churn_probability"], bgp["predicted_value"]
    return out.reset_index(drop=True)
