"""Daily scores: churn probability, H-day value, 12-month CLV and each customer's top drivers."""

from __future__ import annotations

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
) -> pd.DataFrame:
    """One `ml.customer_scores` row per input row (the features of one as_of_date)."""
    if features.empty:
        return pd.DataFrame(columns=list(SCORE_COLUMNS))
    horizon = getattr(churn_model, "horizon", None)
    churn_frame = churn_model.spec.prepare(features, horizon)
    # One TreeSHAP pass gives both the drivers and (as the row sums) the LightGBM log-odds.
    contributions = churn_model.contributions(churn_frame)
    churn = churn_model.predict(churn_frame, margin=contributions.to_numpy().sum(axis=1))
    # Both models derive the same BG/NBD columns: fit them once.
    value_spec = getattr(value_model, "spec", None) or value_model.buy_model.spec
    value_frame = value_spec.prepare(churn_frame, value_model.horizon_days)
    # The value model's own P(buy) keeps it self-consistent when the two versions differ.
    value_churn = (
        churn if value_version == churn_version else value_model.predict_churn(value_frame)
    )
    value = value_model.predict(value_frame, value_churn)
    drivers = top_drivers_json(contributions.drop(columns="_bias"), top_k)
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
