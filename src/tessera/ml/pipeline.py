"""Warehouse-level steps: train from feature snapshots, keep the registry current, score a date."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from tessera.ml.errors import RegistryError
from tessera.ml.features import add_season_index
from tessera.ml.registry import (
    ModelEntry,
    champion,
    data_fingerprint,
    list_entries,
    load_model,
    register,
)
from tessera.ml.scoring import SCORE_COLUMNS, score_customers, score_drivers
from tessera.ml.training import (
    TrainConfig,
    TrainingResult,
    build_training_set,
    plan_slices,
    train_models,
)

log = logging.getLogger(__name__)

SNAPSHOTS = "marts.customer_feature_snapshots"
FEATURES = "marts.customer_features"
#: Revenue-bearing orders only: cancelled and refunded orders are not purchases.
ORDERS = "(select customer_id, ordered_at, amount from marts.fct_orders where status = 'completed')"

SCORES_DDL = """
create schema if not exists ml;
create table if not exists ml.customer_scores (
    as_of_date date not null,
    customer_id varchar not null,
    churn_probability double,
    predicted_value_90d double,
    clv_12m double,
    churn_model_version varchar,
    value_model_version varchar,
    top_drivers varchar
);
"""


def data_end(con: duckdb.DuckDBPyConnection, orders: str = ORDERS) -> date | None:
    """The day after the last order: the latest cut-off the data can support."""
    last = con.execute(f"select max(ordered_at) from {orders}").fetchall()[0][0]
    return None if last is None else last.date() + timedelta(days=1)


def train_from_warehouse(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    config: TrainConfig,
    snapshots: str = SNAPSHOTS,
    orders: str = ORDERS,
) -> tuple[TrainingResult, pd.DataFrame]:
    """Train on snapshots whose label window closes before `as_of` (nothing at/after it read)."""
    dates = [r[0] for r in con.execute(f"select distinct as_of_date from {snapshots}").fetchall()]
    plan = plan_slices(
        dates, as_of, config.horizon_days, config.train_dates, config.valid_dates, config.eval_dates
    )
    training_set = build_training_set(con, snapshots, orders, plan, config.horizon_days)
    return train_models(training_set, plan, config), training_set


@dataclass(frozen=True)
class Champions:
    churn: ModelEntry
    value: ModelEntry
    trained: ModelEntry | None  # the run trained by this call, if any


def ensure_champions(
    con: duckdb.DuckDBPyConnection,
    models_dir: Path,
    as_of: date,
    config: TrainConfig,
    retrain_every_days: int | None = None,
    floors: dict[str, float] | None = None,
) -> Champions:
    """The promoted models for `as_of`, training (and registering) one only when needed.

    Training happens when no promoted model has a cut-off on or before `as_of`, or when
    `retrain_every_days` is given and the newest one is older than that.
    """
    churn, value = champion(models_dir, "churn", as_of), champion(models_dir, "value", as_of)
    # The cadence counts from the newest training run, promoted or not: a challenger that lost
    # to the champion was still this week's retrain (else every later date would retrain).
    trained_before = [e for e in list_entries(models_dir) if e.cutoff <= as_of]
    stale = retrain_every_days is not None and (
        not trained_before or (as_of - trained_before[-1].cutoff).days >= retrain_every_days
    )
    trained = None
    if churn is None or value is None or stale:
        log.info("training models with cut-off %s (registry has none fresh enough)", as_of)
        result, training_set = train_from_warehouse(con, as_of, config)
        trained = register(models_dir, result, data_fingerprint(training_set), floors)
        churn, value = champion(models_dir, "churn", as_of), champion(models_dir, "value", as_of)
    if churn is None or value is None:
        raise RegistryError(
            f"no promoted model for {as_of} in {models_dir}: the newest run did not pass the "
            "quality floor (see its metadata.json 'promotion')"
        )
    return Champions(churn, value, trained)


def score_date(
    con: duckdb.DuckDBPyConnection,
    champions: Champions,
    as_of: date,
    features: str = FEATURES,
    orders: str = ORDERS,
) -> pd.DataFrame:
    """Scores for every customer in the features of `as_of`."""
    frame = con.execute(
        f"select * from {features} where as_of_date = $d order by customer_id", {"d": as_of}
    ).df()
    frame = add_season_index(con, orders, frame, champions.value.metadata["horizon_days"])
    return score_customers(
        frame,
        load_model(champions.churn, "churn"),
        load_model(champions.value, "value"),
        champions.churn.version,
        champions.value.version,
    )


def write_scores(con: duckdb.DuckDBPyConnection, scores: pd.DataFrame, as_of: date) -> int:
    """Replace the scores of `as_of` in one transaction (reruns are safe, never partial)."""
    con.execute(SCORES_DDL)
    con.register("scores_frame", scores[list(SCORE_COLUMNS)])
    try:
        con.execute("begin transaction")
        con.execute("delete from ml.customer_scores where as_of_date = $d", {"d": as_of})
        con.execute(
            f"insert into ml.customer_scores select {', '.join(SCORE_COLUMNS)} from scores_frame"
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("scores_frame")
    return len(scores)


ASSIGNMENTS = "campaigns.campaign_assignments"


def write_drivers(
    con: duckdb.DuckDBPyConnection,
    champions: Champions,
    as_of: date,
    features: str = FEATURES,
    assignments: str = ASSIGNMENTS,
) -> pd.DataFrame:
    """Fill ml.customer_scores.top_drivers of `as_of` for every customer assigned a campaign
    that day (treated or control), with TreeSHAP over those customers only; returns how many.

    The column stays where every reader (review app, outbound personalization) already looks;
    customers not assigned that day keep NULL drivers. Returns the (customer_id, top_drivers)
    rows written.
    """
    frame = con.execute(
        f"select * from {features} where as_of_date = $d order by customer_id", {"d": as_of}
    ).df()
    assigned = [
        r[0]
        for r in con.execute(
            f"select distinct customer_id from {assignments} where cast(as_of_date as date) = $d",
            {"d": as_of},
        ).fetchall()
    ]
    drivers = score_drivers(frame, load_model(champions.churn, "churn"), assigned)
    con.register("drivers_frame", drivers)
    try:
        con.execute("begin transaction")
        con.execute(
            "update ml.customer_scores set top_drivers = null where as_of_date = $d", {"d": as_of}
        )
        con.execute(
            """update ml.customer_scores s set top_drivers = d.top_drivers
            from drivers_frame d
            where s.as_of_date = $d and s.customer_id = d.customer_id""",
            {"d": as_of},
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("drivers_frame")
    return drivers
