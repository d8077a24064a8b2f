"""Shared fixtures: a small simulated transaction log and its point-in-time features."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest

from tessera.ml.features import transaction_features
from tessera.ml.simulation import simulate_transactions
from tessera.ml.training import TrainConfig, build_training_set, plan_slices

AS_OF = date(2023, 10, 2)
HORIZON = 60


@pytest.fixture(scope="session")
def transactions() -> pd.DataFrame:
    tx, _ = simulate_transactions(3000, seed=7, start=date(2022, 1, 1), end=date(2024, 1, 1))
    return tx


@pytest.fixture(scope="session")
def small_config() -> TrainConfig:
    return TrainConfig(
        horizon_days=HORIZON, train_dates=6, valid_dates=2, num_boost_round=80, min_data_in_leaf=20
    )


def snapshot_dates(as_of: date = AS_OF, weeks: int = 30) -> list[date]:
    return [as_of - timedelta(days=7 * k) for k in range(weeks, 0, -1)]


def build(tx: pd.DataFrame, config: TrainConfig, as_of: date = AS_OF) -> pd.DataFrame:
    """Features for weekly dates from the transactions, then the labelled training set."""
    con = duckdb.connect()
    con.register("orders", tx)
    plan = plan_slices(
        snapshot_dates(as_of), as_of, config.horizon_days, config.train_dates, config.valid_dates
    )
    feats = transaction_features(con, "orders", plan.all_dates)
    con.register("snapshots", feats)
    return build_training_set(con, "snapshots", "orders", plan, config.horizon_days), plan


@pytest.fixture(scope="session")
def training(transactions, small_config):
    from tessera.ml.training import train_models

    training_set, plan = build(transactions, small_config)
    return training_set, plan, train_models(training_set, plan, small_config)


@pytest.fixture(scope="session")
def build_training():
    """`build(transactions, config, as_of=AS_OF) -> (training_set, plan)`."""
    return build


@pytest.fixture(scope="session")
def as_of() -> date:
    return AS_OF
