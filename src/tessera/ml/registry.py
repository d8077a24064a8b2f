"""The model registry: versioned folders under models_dir with metadata and a promotion rule.

Layout: ``<models_dir>/<version>/`` holds ``churn.pkl``, ``value.pkl``, ``evaluation.parquet``
(held-out predictions of LightGBM and the baselines) and ``metadata.json``. The version is
``<cut-off YYYYMMDD>-<hash of data fingerprint and hyperparameters>``, so retraining on the
same data with the same settings reproduces it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import platform
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np
import pandas as pd

from tessera.ml.errors import RegistryError
from tessera.ml.evaluation import SELECTION_METRIC, churn_metrics, value_metrics
from tessera.ml.training import ChurnModel, TrainingResult, ValueModel

log = logging.getLogger(__name__)

KINDS = ("churn", "value")
#: The metric a champion and its challenger are compared on, higher is better: the one the
#: candidates of a run are chosen on (ml.evaluation.SELECTION_METRIC).
PRIMARY_METRIC = dict(SELECTION_METRIC)
#: The metric of the quality floor: below these a model is never promoted (and the
#: model-quality check fails).
FLOOR_METRIC = {"churn": "auc", "value": "spearman"}
DEFAULT_FLOORS = {"churn": 0.6, "value": 0.2}
_LIBRARIES = ("lightgbm", "scikit-learn", "scipy", "numpy", "pandas", "duckdb", "pyarrow")


def data_fingerprint(frame: pd.DataFrame) -> str:
    """A stable hash of a training set's content (rows in order, all columns)."""
    digest = hashlib.sha256()
    digest.update(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def should_promote(
    challenger: float, champion: float | None, floor: float, floor_value: float | None = None
) -> tuple[bool, str]:
    """Champion/challenger rule: promote when the floor metric (`floor_value`, default the
    challenger's score) clears the floor and the challenger is not worse than the champion."""
    floor_value = challenger if floor_value is None else floor_value
    if not np.isfinite(challenger) or not np.isfinite(floor_value) or floor_value < floor:
        return False, f"{floor_value:.4f} is below the quality floor {floor:.4f}"
    if champion is None:
        return True, "no champion yet"
    # Scores read back from metadata JSON carry ten decimals: equal within that is equal.
    if challenger >= champion - 1e-9:
        return True, f"{challenger:.4f} >= champion {champion:.4f} on the same evaluation slice"
    return False, f"{challenger:.4f} < champion {champion:.4f} on the same evaluation slice"


@dataclass(frozen=True)
class ModelEntry:
    version: str
    path: Path
    metadata: dict

    @property
    def cutoff(self) -> date:
        return date.fromisoformat(self.metadata["cutoff"])


def list_entries(models_dir: Path) -> list[ModelEntry]:
    """Every registered run, oldest cut-off first (ties: older registration first)."""
    entries = []
    for meta_path in sorted(Path(models_dir).glob("*/metadata.json")):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise RegistryError(f"{meta_path}: unreadable model metadata ({exc})") from exc
        entries.append(ModelEntry(meta["version"], meta_path.parent, meta))
    return sorted(entries, key=lambda e: (e.metadata["cutoff"], e.metadata["created_at"]))


def champion(models_dir: Path, kind: str, as_of: date) -> ModelEntry | None:
    """The newest promoted model of `kind` whose training cut-off is on or before `as_of`."""
    eligible = [
        e for e in list_entries(models_dir) if e.metadata["promoted"][kind] and e.cutoff <= as_of
    ]
    return eligible[-1] if eligible else None


def load_model(entry: ModelEntry, kind: str) -> ChurnModel | ValueModel:
    path = entry.path / f"{kind}.pkl"
    try:
        with path.open("rb") as fh:
            return pickle.load(fh)  # noqa: S301 - our own registry files
    except (OSError, pickle.UnpicklingError, EOFError) as exc:
        raise RegistryError(f"{path}: cannot load the {kind} model ({exc})") from exc


def _champion_score(entry: ModelEntry | None, kind: str, result: TrainingResult) -> float | None:
    if entry is None:
        return None
    metric = PRIMARY_METRIC[kind]
    evaluation = {d.isoformat() for d in result.plan.evaluation}
    window = entry.metadata.get("training_window", {})
    if evaluation & set(window.get("final", [])):
        # The champion's final fit learnt from this very slice: its score there would be
        # in-sample. Its own held-out score is the fair one (the same slice when the cut-off
        # is the same, the usual case of such an overlap).
        recorded = entry.metadata["metrics"].get(entry.metadata.get("winners", {}).get(kind))
        if recorded is not None and metric in recorded:
            return float(recorded[metric])
    # The champion predicts over the challenger's label window, the window of the labels.
    model = load_model(entry, kind)
    held_out, window = result.held_out, result.plan.evaluation_window
    if kind == "churn":
        frame = model.spec.prepare(held_out, window)
        return churn_metrics(held_out["label_churned"], model.predict(frame, window))[metric]
    spec = getattr(model, "spec", None) or model.buy_model.spec
    frame = spec.prepare(held_out, window)
    return value_metrics(held_out["label_value"], model.predict(frame, horizon=window))[metric]


def register(
    models_dir: Path,
    result: TrainingResult,
    fingerprint: str,
    floors: dict[str, float] | None = None,
) -> ModelEntry:
    """Save a training run and decide, per kind, whether it becomes the champion."""
    floors = {**DEFAULT_FLOORS, **(floors or {})}
    models_dir = Path(models_dir)
    # Same data and same hyperparameters give the same version; either changing gives a new one.
    config_json = json.dumps(result.config.as_dict(), sort_keys=True)
    run_hash = hashlib.sha256((fingerprint + config_json).encode()).hexdigest()
    version = f"{result.plan.cutoff:%Y%m%d}-{run_hash[:10]}"
    promotion: dict[str, dict] = {}
    for kind in KINDS:
        current = champion(models_dir, kind, result.plan.cutoff)
        if current is not None and current.version == version:
            current = None  # re-registering the same run: judge it on its own merits
        metric = PRIMARY_METRIC[kind]
        winner = result.winners.get(kind, "lightgbm")
        challenger = float(result.metrics.loc[winner, metric])
        floor_value = float(result.metrics.loc[winner, FLOOR_METRIC[kind]])
        champion_score = _champion_score(current, kind, result)
        promoted, reason = should_promote(challenger, champion_score, floors[kind], floor_value)
        promotion[kind] = {
            "promoted": promoted,
            "model": winner,
            "metric": metric,
            "floor_metric": FLOOR_METRIC[kind],
            "floor_value": floor_value,
            "challenger": challenger,
            "champion_version": current.version if current else None,
            "champion": champion_score,
            "floor": floors[kind],
            "reason": reason,
        }
    plan = result.plan
    meta = {
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cutoff": plan.cutoff.isoformat(),
        "horizon_days": result.config.horizon_days,
        "label_window_days": plan.window,
        "method": plan.describe(),
        "winners": result.winners,
        "fits": result.fits,
        "notes": result.notes,
        "training_window": {
            "train": [d.isoformat() for d in plan.train],
            "validation": [d.isoformat() for d in plan.valid],
            "evaluation": [d.isoformat() for d in plan.evaluation],
            "overlapping_labels": plan.overlapping_labels,
            "final": [d.isoformat() for d in plan.final],
        },
        "rows": result.rows,
        "features": result.churn.spec.features,
        "categories": result.churn.spec.categories,
        "hyperparameters": result.config.as_dict(),
        "boosting_rounds": result.fits.get("final", {}).get("rounds", {}),
        "metrics": json.loads(result.metrics.to_json(orient="index")),
        "beats_baselines": result.passed,
        "verdict": result.verdict_message,
        "library_versions": library_versions(),
        "data_fingerprint": fingerprint,
        "promoted": {kind: promotion[kind]["promoted"] for kind in KINDS},
        "promotion": promotion,
    }
    final = models_dir / version
    tmp = models_dir / f".{version}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for kind, model in (("churn", result.churn), ("value", result.value)):
        with (tmp / f"{kind}.pkl").open("wb") as fh:
            pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
    result.predictions.to_parquet(tmp / "evaluation.parquet", index=False)
    (tmp / "importance.json").write_text(result.churn.importance().to_json())
    (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, default=str))
    # Write then rename, so a crash never leaves a half-written version that looks complete.
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    log.info("registered %s: promoted %s", version, meta["promoted"])
    return ModelEntry(version, final, meta)
