"""Asset checks of the ml group: a blocking model-quality floor and the baseline comparison."""

from datetime import date

import dagster as dg
from dagster_duckdb import DuckDBResource

from tessera.orchestration.defs.ml.assets import customer_scores, model_evaluation, models
from tessera.orchestration.defs.resources import DataStorage


@dg.asset_check(asset=models, blocking=True)
def models_quality_floor(storage: DataStorage) -> dg.AssetCheckResult:
    """Blocking: the current champions' winning models clear the quality floor (churn AUC,
    value Spearman).

    A challenger below the floor is never promoted; this check fails when no champion at all
    clears it, so scoring and sending never run on a broken model.
    """
    from tessera.ml.registry import DEFAULT_FLOORS, FLOOR_METRIC, list_entries

    entries = list_entries(storage.models_dir)
    failures, meta = [], {}
    for kind, metric in FLOOR_METRIC.items():
        promoted = [e for e in entries if e.metadata["promoted"][kind]]
        if not promoted:
            failures.append(f"no promoted {kind} model")
            continue
        entry = promoted[-1]
        winner = entry.metadata.get("winners", {}).get(kind, "lightgbm")
        value = entry.metadata["metrics"][winner][metric]
        floor = entry.metadata["promotion"][kind]["floor"] or DEFAULT_FLOORS[kind]
        meta[f"{kind}_{metric}"] = float(value)
        meta[f"{kind}_version"] = entry.version
        if value < floor:
            failures.append(f"{kind} {metric} {value:.3f} < floor {floor:.3f}")
    return dg.AssetCheckResult(
        passed=not failures,
        metadata={**meta, "failures": "; ".join(failures) or "none"},
    )


@dg.asset_check(asset=model_evaluation)
def lightgbm_beats_baselines(storage: DataStorage) -> dg.AssetCheckResult:
    """Warns (red in the UI) when a baseline (RFM heuristic or BG/NBD + Gamma-Gamma) won a
    target on the held-out slice (churn AUC, value top-10% revenue capture): the scores are
    then the baseline's, never worse than it, but the learnt models added nothing."""
    from tessera.ml.registry import list_entries

    entries = list_entries(storage.models_dir)
    if not entries:
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.WARN, metadata={"reason": "no model"}
        )
    m = entries[-1].metadata
    return dg.AssetCheckResult(
        passed=bool(m["beats_baselines"]),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"model_version": m["version"], "verdict": m["verdict"]},
    )


@dg.asset_check(asset=customer_scores, blocking=True)
def customer_scores_valid(
    context: dg.AssetCheckExecutionContext, warehouse: DuckDBResource
) -> dg.AssetCheckResult:
    """Blocking: today's scores exist, probabilities lie in [0, 1], values are non-negative and
    every row names its model versions."""
    key = context.run.tags.get("dagster/partition")
    where = (
        "as_of_date = $d"
        if key
        else "as_of_date = (select max(as_of_date) from ml.customer_scores)"
    )
    params = {"d": date.fromisoformat(key)} if key else {}
    with warehouse.get_connection() as con:
        rows, bad_p, bad_v, no_version = con.execute(
            f"""select count(*),
                count(*) filter (where churn_probability is null or churn_probability < 0 or churn_probability > 1),
                count(*) filter (where predicted_value_90d is null or predicted_value_90d < 0 or clv_12m < 0),
                count(*) filter (where churn_model_version is null or value_model_version is null)
            from ml.customer_scores where {where}""",
            params,
        ).fetchall()[0]
    return dg.AssetCheckResult(
        passed=rows > 0 and bad_p == 0 and bad_v == 0 and no_version == 0,
        metadata={
            "rows": rows,
            "bad_probability": bad_p,
            "bad_value": bad_v,
            "missing_version": no_version,
        },
    )
