"""Dagster assets of the ml group: trained models, their evaluation report and daily scores."""

import dataclasses
import json
import typing
from datetime import date

import dagster as dg
import pydantic
from dagster_duckdb import DuckDBResource

# ml.training and friends import LightGBM, scikit-learn and SciPy (seconds): they are imported
# inside the asset bodies so that loading the Dagster definitions (UI, CLI, every run's start)
# stays fast. ml.config is light.
from tessera.ml.config import TrainConfig
from tessera.orchestration.defs.partitions import WAREHOUSE_POOL, daily_partitions
from tessera.orchestration.defs.resources import DataStorage
from tessera.orchestration.defs.warehouse.assets import model_key
from tessera.reporting import markdown_table, png_markdown


class _ModelSettings(dg.Config):
    """What the `models` asset adds to the training configuration (cadence, cut-off, floors)."""

    #: Retrain when the champion's cut-off is this many days old or more.
    retrain_every_days: int = 7
    #: Training cut-off (YYYY-MM-DD); default: the run's partition date, else the data end.
    as_of: str | None = None
    churn_auc_floor: float = 0.6
    value_spearman_floor: float = 0.2

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(TrainConfig)}
        )

    def floors(self) -> dict[str, float]:
        return {"churn": self.churn_auc_floor, "value": self.value_spearman_floor}


def _derive_model_config() -> type[_ModelSettings]:
    """The run config of the ml assets: every `TrainConfig` field (type, default, description)
    plus `_ModelSettings`, so a hyperparameter is defined once, in ml/config.py."""
    hints = typing.get_type_hints(TrainConfig)
    derived = {
        f.name: (
            hints[f.name],
            pydantic.Field(default=f.default, description=f.metadata.get("doc")),
        )
        for f in dataclasses.fields(TrainConfig)
    }
    return pydantic.create_model(
        "ModelConfig",
        __base__=_ModelSettings,
        __module__=__name__,
        __doc__="Hyperparameters (ml/config.py `TrainConfig`) and cadence of the churn and value models.",
        **derived,
    )


ModelConfig = _derive_model_config()


def _cutoff(context: dg.AssetExecutionContext, config: ModelConfig, end: date | None) -> date:
    requested = config.as_of or context.run.tags.get("dagster/partition")
    if requested:
        as_of = date.fromisoformat(requested)
        return min(as_of, end) if end else as_of
    if end is None:
        raise dg.Failure("marts.fct_orders has no completed orders: nothing to train on")
    return end


@dg.asset(
    # Files, not a table: the registry in data/models/ (one folder per trained version).
    key=["files", "models"],
    group_name="ml",
    kinds={"lightgbm"},
    pool=WAREHOUSE_POOL,
    deps=[model_key("customer_feature_snapshots"), model_key("fct_orders")],
)
def models(
    context: dg.AssetExecutionContext,
    config: ModelConfig,
    warehouse: DuckDBResource,
    storage: DataStorage,
) -> dg.MaterializeResult:
    """Churn and 90-day value models in data/models/, each the winner of six candidates on
    a held-out slice: LightGBM over BG/NBD's outputs, plain LightGBM, a blend of the first
    with BG/NBD, an equal-weight ensemble, BG/NBD + Gamma-Gamma and the RFM heuristic.

    Retrains when the champion is a week old (or none exists), from the feature snapshots
    whose label window closes before the cut-off; after the held-out comparison the winners
    are refit on every labelled snapshot. A new run replaces the champion only if its winner
    is not worse on the same held-out slice (AUC for churn, top-10% revenue capture for value).
    """
    from tessera.ml.pipeline import data_end, ensure_champions

    with warehouse.get_connection() as con:
        as_of = _cutoff(context, config, data_end(con))
        champs = ensure_champions(
            con,
            storage.models_dir,
            as_of,
            config.train_config(),
            retrain_every_days=config.retrain_every_days,
            floors=config.floors(),
        )
    trained = champs.trained
    meta: dict[str, dg.MetadataValue | str | int | float | bool] = {
        "cutoff": as_of.isoformat(),
        "churn_model_version": champs.churn.version,
        "value_model_version": champs.value.version,
        "trained_this_run": trained is not None,
    }
    if trained is not None:
        m = trained.metadata
        winners = m.get("winners", {"churn": "lightgbm", "value": "lightgbm"})
        meta.update(
            {
                "trained_version": trained.version,
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
                "fits": dg.MetadataValue.json(m.get("fits", {})),
                "promotion": dg.MetadataValue.json(m["promotion"]),
            }
        )
    context.log.info(
        "champions for %s: churn %s, value %s", as_of, champs.churn.version, champs.value.version
    )
    return dg.MaterializeResult(metadata=meta)


# A report (metadata only): it writes no table and no file.
@dg.asset(key=["reports", "model_evaluation"], group_name="ml", kinds={"lightgbm"}, deps=[models])
def model_evaluation(storage: DataStorage) -> dg.MaterializeResult:
    """Evaluation report of the newest trained models on a later, untouched time slice.

    Every candidate side by side (LightGBM over BG/NBD, LightGBM, the blend, the
    ensemble, BG/NBD + Gamma-Gamma, the RFM heuristic): churn AUC, PR-AUC, Brier, calibration curve, cumulative
    gain; value Spearman, top-10% revenue capture, MAE, RMSE, total predicted vs actual
    revenue, decile lift; which candidate won each target and by how much; the evaluation fit
    and the final fit; and the churn model's global feature importance. A red verdict means a
    baseline won a target on this slice (the scores then come from that baseline).
    """
    import pandas as pd

    from tessera.ml.evaluation import MODEL_LABELS, plot_report
    from tessera.ml.registry import list_entries

    entries = list_entries(storage.models_dir)
    if not entries:
        raise dg.Failure("the model registry is empty: materialize `models` first")
    entry = entries[-1]
    m = entry.metadata
    predictions = pd.read_parquet(entry.path / "evaluation.parquet")
    importance = pd.read_json(entry.path / "importance.json", typ="series")
    figures = plot_report(predictions, importance)
    winners = m.get("winners", {"churn": "lightgbm", "value": "lightgbm"})
    table = pd.DataFrame(m["metrics"]).T
    table.index = [
        MODEL_LABELS.get(name, name)
        + (" (churn winner)" if winners["churn"] == name else "")
        + (" (value winner)" if winners["value"] == name else "")
        for name in table.index
    ]
    shown = [
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
    ]
    table = table[shown].reset_index(names="model")
    status = "PASSED" if m["beats_baselines"] else "FAILED"
    colour = "green" if m["beats_baselines"] else "red"
    verdict = f'<span style="color:{colour}"><b>{status}</b></span>: {m["verdict"]}'
    import matplotlib.pyplot as plt

    plots = {name: png_markdown(fig, name) for name, fig in figures.items()}
    for fig in figures.values():
        plt.close(fig)
    window = m["training_window"]
    return dg.MaterializeResult(
        metadata={
            "model_version": entry.version,
            "verdict": dg.MetadataValue.md(f"## {status}\n\n{verdict}"),
            "beats_baselines": bool(m["beats_baselines"]),
            "evaluation_slice": ", ".join(window["evaluation"]),
            "training_window": f"{window['train'][0]} .. {window['train'][-1]} (validation {', '.join(window['validation']) or 'a fifth of the customers'})",
            "horizon_days": m["horizon_days"],
            "label_window_days": m.get("label_window_days", m["horizon_days"]),
            "method": m.get("method", ""),
            "churn_model": winners["churn"],
            "value_model": winners["value"],
            "evaluation_fit": dg.MetadataValue.json(m.get("fits", {}).get("evaluation", {})),
            "final_fit": dg.MetadataValue.json(m.get("fits", {}).get("final", {})),
            "notes": "; ".join(m.get("notes", [])) or "none",
            "metrics": dg.MetadataValue.md(markdown_table(table, max_rows=10)),
            "calibration_curve": dg.MetadataValue.md(plots["calibration"]),
            "churn_gain": dg.MetadataValue.md(plots["churn_gain"]),
            "value_decile_lift": dg.MetadataValue.md(plots["value_lift"]),
            "feature_importance": dg.MetadataValue.md(plots.get("feature_importance", "_none_")),
            "dagster/row_count": len(predictions),
        }
    )


@dg.asset(
    key=["ml", "customer_scores"],
    group_name="ml",
    kinds={"duckdb"},
    partitions_def=daily_partitions,
    pool=WAREHOUSE_POOL,
    deps=[model_key("customer_features"), models],
)
def customer_scores(
    context: dg.AssetExecutionContext,
    config: ModelConfig,
    warehouse: DuckDBResource,
    storage: DataStorage,
) -> dg.MaterializeResult:
    """Daily churn probability, 90-day predicted value, 12-month CLV and top churn drivers
    per customer (ml.customer_scores), from the newest promoted models trained before the date.

    If the registry has no promoted model with a cut-off on or before the date (a fresh
    install), one is trained from the snapshots before the date first, so the very first daily
    run works from an empty registry.
    """
    from tessera.ml.pipeline import ensure_champions, score_date, write_scores

    as_of = date.fromisoformat(context.partition_key)
    with warehouse.get_connection() as con:
        champs = ensure_champions(
            con, storage.models_dir, as_of, config.train_config(), floors=config.floors()
        )
        scores = score_date(con, champs, as_of)
        n = write_scores(con, scores, as_of)
    preview = scores.sort_values("churn_probability", ascending=False).head(10)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": n,
            "churn_model_version": champs.churn.version,
            "value_model_version": champs.value.version,
            "trained_this_run": champs.trained is not None,
            "mean_churn_probability": float(scores["churn_probability"].mean()) if n else 0.0,
            "total_predicted_value_90d": float(scores["predicted_value_90d"].sum()) if n else 0.0,
            "highest_risk": dg.MetadataValue.md(markdown_table(preview)),
        }
    )
