"""Daily scores (churn probability, H-day value, 12-month CLV) and top churn drivers on demand.

TreeSHAP costs more than the scores themselves (at 1M customers 65 s of 110 s), and only the
customers assigned a campaign on the date are ever shown or sent their drivers: scoring skips
it (`top_drivers` is NULL) and `score_drivers` runs it for the assigned customers only.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from tessera.ml.training import ChurnModel, ValueModel, clv_12m

SCORE_COLUMNS = (
    "as_of_date",
    "customer_id",
    "churn_probability",
    "predicted_value_90d",
    "clv_12m",
    "churn_model_version",
    "value_model_version",
    "top_drivers",
)


def top_drivers_json(contributions: pd.DataFrame, k: int = 3) -> np.ndarray:
    """JSON text per row: the k features pushing churn risk up most, [{feature, contribution}]."""
    values = contributions.to_numpy(float)
    k = min(k, values.shape[1])
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    names = np.asarray(contributions.columns, dtype=object)[order]
    picked = np.take_along_axis(values, order, axis=1)
    parts = []
    for j in range(k):  # k columns, vectorised over customers
        parts.append(
            '{"feature": "'
            + pd.Series(names[:, j]).astype(str)
            + '", "contribution": '
            + pd.Series(np.round(picked[:, j], 4)).map("{:.4f}".format)
            + "}"
        )
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + ", " + part
    return ("[" + joined + "]").to_numpy()


def score_customers(
    features: pd.DataFrame,
    churn_model: ChurnModel,
    value_model: ValueModel,
    churn_version: str,
    value_version: str,
    top_k: int = 3,
    with_drivers: bool = False,
) -> pd.DataFrame:
    """One `ml.customer_scores` row per input row (the features of one as_of_date).

    `top_drivers` is NULL here unless `with_drivers`: see `score_drivers`.
    """
    if features.empty:
        return pd.DataFrame(columns=list(SCORE_COLUMNS))
    horizon = getattr(churn_model, "horizon", None)
    churn_frame = churn_model.spec.prepare(features, horizon)
    contributions = churn_model.contributions(churn_frame) if with_drivers else None
    margin = None if contributions is None else contributions.to_numpy().sum(axis=1)
    churn = churn_model.predict(churn_frame, margin=margin)
    # Both models derive the same BG/NBD columns: fit them once.
    value_spec = getattr(value_model, "spec", None) or value_model.buy_model.spec
    value_frame = value_spec.prepare(churn_frame, value_model.horizon_days)
    # The value model's own P(buy) keeps it self-consistent when the two versions differ.
    value_churn = (
        churn if value_version == churn_version else value_model.predict_churn(value_frame)
    )
    value = value_model.predict(value_frame, value_churn)
    drivers = (
        top_drivers_json(contributions.drop(columns="_bias"), top_k)
        if contributions is not None
        else np.full(len(features), None, dtype=object)
    )
    return pd.DataFrame(
        {
            "as_of_date": pd.to_datetime(features["as_of_date"]).dt.date.to_numpy(),
            "customer_id": features["customer_id"].astype(str).to_numpy(),
            "churn_probability": churn,
            "predicted_value_90d": value,
            "clv_12m": clv_12m(value, value_churn, value_model.horizon_days),
            "churn_model_version": churn_version,
            "value_model_version": value_version,
            "top_drivers": drivers,
        }
    )


def score_drivers(
    features: pd.DataFrame,
    churn_model: ChurnModel,
    customer_ids: Iterable[str] | None = None,
    top_k: int = 3,
) -> pd.DataFrame:
    """(customer_id, top_drivers) for `customer_ids` (default all) among `features` (one
    date's customers): TreeSHAP over just those rows, with the BG/NBD columns fitted on the
    whole date as `score_customers` fits them, so a customer's drivers match its score."""
    ids = features["customer_id"].astype(str)
    rows = features if customer_ids is None else features[ids.isin(set(customer_ids))]
    if rows.empty:
        return pd.DataFrame({"customer_id": [], "top_drivers": []}, dtype=object)
    horizon = getattr(churn_model, "horizon", None)
    frame = churn_model.spec.prepare(rows, horizon, fit_on=features)
    contributions = churn_model.contributions(frame).drop(columns="_bias")
    return pd.DataFrame(
        {
            "customer_id": rows["customer_id"].astype(str).to_numpy(),
            "top_drivers": top_drivers_json(contributions, top_k),
        }
    )


def global_importance(churn_model: ChurnModel, n: int = 10) -> pd.DataFrame:
    """The churn booster's n most important features by share of total split gain (no SHAP)."""
    share = churn_model.importance().head(n)
    return pd.DataFrame({"feature": share.index.astype(str), "gain_share": share.round(4).values})
