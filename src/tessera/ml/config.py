"""The training configuration: one definition, used by `tessera predict`, the training code and
the Dagster `models` asset's run config (which is derived from it field by field).

It imports nothing heavy, so the Dagster definitions can build their config class from it
without loading LightGBM, scikit-learn or SciPy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


def _doc(default: object, doc: str) -> object:
    """A field with a default and a description (shown in the Dagster launchpad)."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters and the time layout of one training run."""

    horizon_days: int = _doc(90, "Days ahead that churn and value are predicted for.")
    train_dates: int = _doc(
        0,
        "Cap on training dates (0: all the history has; the count and spacing of snapshot "
        "dates come from the history's length).",
    )
    valid_dates: int = _doc(2, "Snapshot dates for early stopping and calibration.")
    eval_dates: int = _doc(1, "Snapshot dates of the held-out comparison of the candidates.")
    num_boost_round: int = _doc(200, "Most boosting rounds (early stopping picks fewer).")
    learning_rate: float = _doc(0.2, "Learning rate of the churn classifiers.")
    #: Shallow trees: TreeSHAP (the per-customer drivers stored with every daily score) costs
    #: about depth^2 per tree and row; depth 3 scores 20k customers' drivers in a few seconds
    #: with the same held-out AUC and Spearman as 15-leaf trees of any depth (docs/models.md).
    num_leaves: int = _doc(8, "Leaves per tree of the churn classifiers.")
    max_depth: int = _doc(3, "Depth of the churn classifiers' trees (SHAP cost grows with it).")
    #: The value model stores no per-customer contributions, so its trees may be deeper; a
    #: slower rate because early stopping on the Tweedie loss comes within ~100 rounds.
    value_num_leaves: int = _doc(15, "Leaves per tree of the value regressions.")
    value_learning_rate: float = _doc(0.05, "Learning rate of the value regressions.")
    tweedie_variance_power: float = _doc(1.5, "Tweedie variance power of the value model (1..2).")
    min_data_in_leaf: int = _doc(50, "Fewest training rows per leaf.")
    feature_fraction: float = _doc(0.9, "Share of features each tree samples.")
    lambda_l2: float = _doc(1.0, "L2 regularisation of the leaf values.")
    early_stopping_rounds: int = _doc(30, "Rounds without improvement before stopping.")
    bgnbd_features: bool = _doc(
        True,
        "Feed BG/NBD's outputs to LightGBM as features (off: no LightGBM-over-BG/NBD, blend "
        "or ensemble candidates).",
    )
    seasonality: bool = _doc(
        True,
        "Set the predicted revenue level from the shop's seasonal index (needs a year of "
        "orders before the first snapshot).",
    )
    #: Boosting time grows with the rows; on the 100k-customer demo shop (1.1M labelled rows)
    #: a 100k sample gives the same held-out AUC (0.938 vs 0.939) and top-10% capture
    #: (0.631 vs 0.629) as 300k at a third of the LightGBM time (docs/models.md, "Speed").
    max_train_rows: int = _doc(100_000, "Most training rows (a seeded sample above it).")
    seed: int = _doc(42, "Seed of sampling and LightGBM (same seed, same models).")
    #: One thread: LightGBM's OpenMP threads spin badly when the cores are shared with
    #: other pipeline steps, and one thread is also bit-for-bit reproducible.
    num_threads: int = _doc(1, "LightGBM threads (1 is reproducible bit for bit).")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def field_docs(cls) -> dict[str, str]:
        """Each field's one-line description."""
        return {f.name: f.metadata.get("doc", "") for f in fields(cls)}
