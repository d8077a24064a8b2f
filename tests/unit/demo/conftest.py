"""Fixtures for the demo shop tests: one small shop built once per session."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import pytest

from tessera.demo.generator import ShopSummary, generate_shop

START = dt.date(2023, 11, 1)
END = dt.date(2025, 11, 1)


@dataclass
class Shop:
    summary: ShopSummary
    customers: pd.DataFrame
    orders: pd.DataFrame
    order_items: pd.DataFrame
    events: pd.DataFrame
    campaign_responses: pd.DataFrame
    truth: pd.DataFrame


def load_shop(summary: ShopSummary) -> Shop:
    frames = {t: pd.read_parquet(summary.out_dir / t) for t in summary.rows}
    return Shop(summary=summary, truth=pd.read_parquet(summary.ground_truth_path), **frames)


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    """2,000 customers over two years with 2% dirty rows."""
    root = tmp_path_factory.mktemp("demo-shop")
    summary = generate_shop(root / "landing", 2000, 7, START, END, dirty_rate=0.02)
    return load_shop(summary)


@pytest.fixture(scope="session")
def clean_shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    root = tmp_path_factory.mktemp("clean-shop")
    summary = generate_shop(root / "landing", 1500, 11, START, END, dirty_rate=0.0)
    return load_shop(summary)


def utc(series: pd.Series) -> pd.Series:
    """ISO-8601 strings with offsets as UTC timestamps (what a correct pipeline does)."""
    return pd.to_datetime(series, utc=True, format="ISO8601")
