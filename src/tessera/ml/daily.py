"""The ml assets' work: the training cut-off, the champions' summary, the evaluation report, scoring.

Imported inside the asset bodies: it pulls in LightGBM, scikit-learn and matplotlib (seconds),
which loading the Dagster definitions must not pay for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from tessera.ml.config import TrainConfig
from tessera.ml.errors import NotEnoughHistoryError, RegistryError
from tessera.ml.pipeline import (
    Champions,
    ensure_champions,
    score_date,
    write_drivers,
    write_scores,
)
from tessera.ml.registry import load_model
from tessera.ml.scoring import global_importance
from tessera.reporting import png_markdown

_DEFAULT_WINNERS = {"churn": "lightgbm", "value": "lightgbm"}

#: The metrics columns of the evaluation report, in this order.
REPORT_METRICS = (
    "auc",
    "pr_auc",
    "brier",
    "mean_predicted",
    "observed_rate",
    "calibration_error",
    "top_decile_lift",
    "spearman",
    "top_decile_share",
    "mae",
    "rmse",
    "total_predicted",
    "total_actual",
    "total_error_pct",
)


def training_cutoff(requested: str | None, end: date | None) -> date:
    """The training cut-off: ``requested`` (YYYY-MM-DD) capped at the data end, else the data end.

    ``end`` is the day after the last completed order (``pipeline.data_end``), None without one.
    """
    if requested:
        as_of = date.fromisoformat(requested)
        return min(as_of, end) if end else as_of
    if end is None:
        raise NotEnoughHistoryError("marts.fct_orders has no completed orders: nothing to train on")
    return end


def champions_summary(champs: Champions, as_of: date) -> dict[str, Any]:
    """What the `models` asset reports: the champions of ``as_of`` and, if this run trained, its
    rows, winners, metrics and promotion (``fits`` and ``promotion`` are dicts, shown as JSON)."""
    summary: dict[str, Any] = {
        "cutoff": as_of.isoformat(),
        "churn_model_version": champs.churn.version,
        "value_model_version": champs.value.version,
        "trained_this_run": champs.trained is not None,
    }
    if champs.trained is None:
        return summary
    m = champs.trained.metadata
    winners = m.get("winners", _DEFAULT_WINNERS)
    summary.update(
        {
            "trained_version": champs.trained.version,
            "promoted": json.dumps(m["promoted"]),
            "training_rows": m["rows"]["train"],
            "evaluation_rows": m["rows"]["evaluation"],
            "final_fit_rows": m["rows"].get("final", 0),
            "churn_model": winners["churn"],
            "value_model": winners["value"],
            "churn_auc": m["metrics"][winners["churn"]]["auc"],
            "value_top10_capture": m["metrics"][winners["value"]]["top_decile_share"],
            "value_spearman": m["metrics"][winners["value"]]["spearman"],
            "label_window_days": m.get("label_window_days", m["horizon_days"]),
            "method": m.get("method", ""),
            "verdict": m["verdict"],
            "fits": m.get("fits", {}),
            "promotion": m["promotion"],
        }
    )
    return summary


@dataclass(frozen=True)
class EvaluationReport:
    """The newest registry entry's evaluation, ready for display."""

    version: str
    beats_baselines: bool
    horizon_days: int
    label_window_days: int
    method: str
    winners: dict[str, str]  # target -> winning candidate
    metrics: pd.DataFrame  # one row per candidate, REPORT_METRICS columns
    plots: dict[str, str]  # name -> Markdown with the PNG
    evaluation_rows: int
    status: str  # PASSED or FAILED
    verdict: str  # Markdown (coloured status and the verdict text)
    training_window: str
    evaluation_slice: str
    notes: str
    fits: dict[str, Any] = field(default_factory=dict)


def evaluation_report(models_dir: Path) -> EvaluationReport:
    """The evaluation report of the newest trained models in ``models_dir``."""
    import matplotlib.pyplot as plt

    from tessera.ml.evaluation import MODEL_LABELS, plot_report
    from tessera.ml.registry import list_entries

    entries = list_entries(models_dir)
    if not entries:
        raise RegistryError("the model registry is empty: materialize `models` first")
    entry = entries[-1]
    m = entry.metadata
    predictions = pd.read_parquet(entry.path / "evaluation.parquet")
    importance = pd.read_json(entry.path / "importance.json", typ="series")
    figures = plot_report(predictions, importance)
    winners = m.get("winners", _DEFAULT_WINNERS)
    table = pd.DataFrame(m["metrics"]).T
    table.index = [
        MODEL_LABELS.get(name, name)
        + (" (churn winner)" if winners["churn"] == name else "")
        + (" (value winner)" if winners["value"] == name else "")
        for name in table.index
    ]
    table = table[list(REPORT_METRICS)].reset_index(names="model")
    status = "PASSED" if m["beats_baselines"] else "FAILED"
    colour = "green" if m["beats_baselines"] else "red"
    plots = {name: png_markdown(fig, name) for name, fig in figures.items()}
    for fig in figures.values():
        plt.close(fig)
    window = m["training_window"]
    validation = ", ".join(window["validation"]) or "a fifth of the customers"
    return EvaluationReport(
        version=entry.version,
        beats_baselines=bool(m["beats_baselines"]),
        horizon_days=m["horizon_days"],
        label_window_days=m.get("label_window_days", m["horizon_days"]),
        method=m.get("method", ""),
        winners=winners,
        metrics=table,
        plots=plots,
        evaluation_rows=len(predictions),
        status=status,
        verdict=f'<span style="color:{colour}"><b>{status}</b></span>: {m["verdict"]}',
        training_window=f"{window['train'][0]} .. {window['train'][-1]} (validation {validation})",
        evaluation_slice=", ".join(window["evaluation"]),
        notes="; ".join(m.get("notes", [])) or "none",
        fits=m.get("fits", {}),
    )


@dataclass(frozen=True)
class ScoresDay:
    """The scores written for one date and the champions that made them."""

    champions: Champions
    scores: pd.DataFrame
    rows: int
    mean_churn_probability: float
    total_predicted_value_90d: float
    highest_risk: pd.DataFrame  # the ten customers most likely to churn
    importance: pd.DataFrame  # the churn model's global feature importance (gain share)


def score_day(
    con: duckdb.DuckDBPyConnection,
    models_dir: Path,
    as_of: date,
    config: TrainConfig,
    floors: dict[str, float] | None = None,
) -> ScoresDay:
    """Score every customer of ``as_of`` into ml.customer_scores (training a first model if the
    registry has none promoted with a cut-off on or before ``as_of``)."""
    champs = ensure_champions(con, models_dir, as_of, config, floors=floors)
    scores = score_date(con, champs, as_of)
    n = write_scores(con, scores, as_of)
    return ScoresDay(
        champions=champs,
        scores=scores,
        rows=n,
        mean_churn_probability=float(scores["churn_probability"].mean()) if n else 0.0,
        total_predicted_value_90d=float(scores["predicted_value_90d"].sum()) if n else 0.0,
        highest_risk=scores.sort_values("churn_probability", ascending=False).head(10),
        importance=global_importance(load_model(champs.churn, "churn")),
    )


@dataclass(frozen=True)
class DriversDay:
    """What `drivers_day` wrote: how many customers got drivers, and which features lead."""

    customers: int
    #: feature, customers (how many have it as their first driver), share of those customers
    leading: pd.DataFrame


def drivers_day(
    con: duckdb.DuckDBPyConnection,
    models_dir: Path,
    as_of: date,
    config: TrainConfig,
    floors: dict[str, float] | None = None,
) -> DriversDay:
    """Top churn drivers for the customers assigned a campaign on ``as_of`` (same champions
    as `score_day`: no promoted model is trained here unless none exists)."""
    champs = ensure_champions(con, models_dir, as_of, config, floors=floors)
    drivers = write_drivers(con, champs, as_of)
    first = drivers["top_drivers"].map(lambda text: json.loads(text)[0]["feature"])
    counts = first.value_counts().head(10)
    leading = pd.DataFrame(
        {
            "feature": counts.index.astype(str),
            "customers": counts.to_numpy(),
            "share": (counts / max(len(drivers), 1)).round(3).to_numpy(),
        }
    )
    return DriversDay(customers=len(drivers), leading=leading)
