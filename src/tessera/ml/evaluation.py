"""Metrics, baseline comparison and plots for churn and value predictions on a held-out slice."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics as skm

MODELS = ("blend", "lightgbm_bgnbd", "lightgbm", "ensemble", "bgnbd", "rfm", "scores")
MODEL_LABELS = {
    "scores": "Scores written (winners)",
    "blend": "Blend (LightGBM over BG/NBD + BG/NBD)",
    "lightgbm_bgnbd": "LightGBM over BG/NBD",
    "lightgbm": "LightGBM",
    "ensemble": "Ensemble (equal-weight average of the LightGBMs; with BG/NBD for value)",
    "rfm": "RFM heuristic",
    "bgnbd": "BG/NBD + Gamma-Gamma",
}
LEARNT = ("blend", "lightgbm_bgnbd", "lightgbm", "ensemble")
BASELINES = ("bgnbd", "rfm")
#: The metric each target's candidates are ranked on (higher is better).
SELECTION_METRIC = {"churn": "auc", "value": "top_decile_share"}
METRIC_LABELS = {"auc": "churn AUC", "top_decile_share": "top-10% revenue capture"}


def churn_metrics(churned: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """AUC, PR-AUC, Brier, calibration gap and top-decile lift of churn probabilities."""
    y = np.asarray(churned, float)
    p = np.clip(np.asarray(probability, float), 0.0, 1.0)
    both = 0 < y.sum() < len(y)
    curve = calibration_table(y, p)
    weights = curve["customers"] / curve["customers"].sum()
    top = decile_table(y, p)
    return {
        "auc": float(skm.roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(skm.average_precision_score(y, p)) if both else float("nan"),
        "brier": float(np.mean((p - y) ** 2)),
        "mean_predicted": float(p.mean()),
        "observed_rate": float(y.mean()),
        "calibration_error": float(
            (weights * (curve["predicted"] - curve["observed"]).abs()).sum()
        ),
        "top_decile_lift": float(top["lift"].iloc[0]),
    }


def value_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Spearman, MAE, RMSE, totals and top-decile revenue share of value predictions."""
    y = np.asarray(actual, float)
    v = np.asarray(predicted, float)
    total_actual, total_predicted = float(y.sum()), float(v.sum())
    deciles = decile_table(y, v)
    return {
        "spearman": float(stats.spearmanr(v, y).statistic) if np.ptp(v) > 0 else 0.0,
        "mae": float(np.mean(np.abs(v - y))),
        "rmse": float(np.sqrt(np.mean((v - y) ** 2))),
        "total_predicted": total_predicted,
        "total_actual": total_actual,
        "total_error_pct": 100.0 * (total_predicted - total_actual) / total_actual
        if total_actual
        else float("nan"),
        "top_decile_share": float(deciles["share_of_total"].iloc[0]),
    }


def calibration_table(churned: np.ndarray, probability: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed churn in equal-width probability bins (empty bins dropped)."""
    frame = pd.DataFrame({"y": churned, "p": probability})
    frame["bin"] = np.minimum((frame["p"] * bins).astype(int), bins - 1)
    out = frame.groupby("bin").agg(
        predicted=("p", "mean"), observed=("y", "mean"), customers=("y", "size")
    )
    return out.reset_index()


def decile_table(outcome: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    """Outcome by score decile (decile 1 = highest scores): rate, lift, cumulative gain."""
    frame = pd.DataFrame({"y": np.asarray(outcome, float), "s": np.asarray(score, float)})
    # Rank first so ties never put more than a tenth of the customers in one decile.
    ranks = frame["s"].rank(method="first", ascending=False)
    frame["decile"] = np.ceil(ranks * 10 / len(frame)).clip(1, 10).astype(int)
    table = frame.groupby("decile").agg(customers=("y", "size"), outcome=("y", "sum")).reset_index()
    total = table["outcome"].sum()
    mean_rate = total / table["customers"].sum() if len(frame) else 0.0
    table["rate"] = table["outcome"] / table["customers"]
    table["lift"] = table["rate"] / mean_rate if mean_rate else np.nan
    table["share_of_total"] = table["outcome"] / total if total else np.nan
    table["cumulative_gain"] = table["outcome"].cumsum() / total if total else np.nan
    return table


def compare_models(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per model with churn and value metrics, from `churn_<m>` / `value_<m>` columns."""
    rows = []
    for model in MODELS:
        if f"churn_{model}" not in predictions:
            continue
        row = {"model": model}
        row.update(churn_metrics(predictions["label_churned"], predictions[f"churn_{model}"]))
        row.update(value_metrics(predictions["label_value"], predictions[f"value_{model}"]))
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


@dataclass(frozen=True)
class Verdict:
    """Which candidate won each target, by how much, and whether a learnt model won both."""

    passed: bool
    failures: list[str]
    lines: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        summary = "; ".join(self.lines)
        if self.passed:
            return f"a LightGBM candidate beats both baselines on both targets: {summary}"
        return (
            f"no learnt candidate beats the best baseline for {', '.join(self.failures)} "
            f"(the scores come from the winner): {summary}"
        )


def verdict(table: pd.DataFrame, winners: dict[str, str] | None = None) -> Verdict:
    """Describe the winners (default: the best candidate per target) against the best
    baseline and the runner-up on the held-out slice."""
    failures, lines = [], []
    for kind, metric in SELECTION_METRIC.items():
        scores = table[metric].dropna()
        if scores.empty:
            continue
        winner = (winners or {}).get(kind) or str(scores.idxmax())
        best_baseline = scores.reindex([m for m in BASELINES if m in scores.index]).idxmax()
        ours = scores[winner]
        others = scores.drop(winner)
        runner_up = others.idxmax() if len(others) else None
        line = (
            f"{kind}: {MODEL_LABELS.get(winner, winner)} wins on {METRIC_LABELS[metric]} {ours:.3f}"
        )
        if runner_up is not None:
            line += (
                f" (+{ours - others[runner_up]:.3f} over {MODEL_LABELS.get(runner_up, runner_up)})"
            )
        if winner not in BASELINES:
            line += f", best baseline {MODEL_LABELS[best_baseline]} {scores[best_baseline]:.3f}"
        lines.append(line)
        if winner in BASELINES or not ours > scores[best_baseline]:
            failures.append(kind)
    return Verdict(passed=not failures, failures=failures, lines=lines)


def plot_report(
    predictions: pd.DataFrame, importance: pd.Series | None = None
) -> dict[str, object]:
    """Matplotlib figures: calibration, churn gain, value decile lift, feature importance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures: dict[str, object] = {}
    models = [m for m in MODELS if f"churn_{m}" in predictions]
    y = predictions["label_churned"].to_numpy(float)

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot([0, 1], [0, 1], "k:", label="perfect")
    for m in models:
        curve = calibration_table(y, predictions[f"churn_{m}"].to_numpy(float))
        ax.plot(curve["predicted"], curve["observed"], "o-", label=MODEL_LABELS[m])
    ax.set(
        xlabel="predicted churn probability",
        ylabel="observed churn rate",
        title="Churn calibration",
    )
    ax.legend()
    figures["calibration"] = fig

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot([0, 100], [0, 100], "k:", label="random")
    for m in models:
        table = decile_table(y, predictions[f"churn_{m}"].to_numpy(float))
        ax.plot(
            np.r_[0, table["decile"] * 10],
            np.r_[0, table["cumulative_gain"] * 100],
            "o-",
            label=MODEL_LABELS[m],
        )
    ax.set(
        xlabel="% customers contacted (highest risk first)",
        ylabel="% churners reached",
        title="Churn cumulative gain",
    )
    ax.legend()
    figures["churn_gain"] = fig

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    width = 0.8 / max(len(models), 1)
    for i, m in enumerate(models):
        table = decile_table(predictions["label_value"], predictions[f"value_{m}"])
        ax.bar(
            table["decile"] + (i - (len(models) - 1) / 2) * width,
            table["lift"],
            width,
            label=MODEL_LABELS[m],
        )
    ax.axhline(1, color="k", linestyle=":")
    ax.set(
        xlabel="predicted value decile (1 = highest)",
        ylabel="actual revenue lift",
        title="Value lift by decile",
    )
    ax.set_xticks(range(1, 11))
    ax.legend()
    figures["value_lift"] = fig

    if importance is not None and len(importance):
        top = importance.sort_values(ascending=True).tail(20)
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(top) + 1.2))
        ax.barh(top.index, top.to_numpy())
        ax.set(xlabel="share of total gain", title="Churn model: feature importance")
        figures["feature_importance"] = fig
    return figures
