"""One small shop built once through Dagster (landing -> gates -> dbt -> features) for every bad input."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from gate_harness import CAMPAIGN_DATE, Shop, fingerprints, run_gated


@pytest.fixture(scope="module")
def shop(small_shop_landing: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """A data folder with a clean baseline build; tests dirty its landing and must restore it."""
    root = tmp_path_factory.mktemp("quality-e2e")
    shutil.copytree(small_shop_landing, root / "landing")
    shutil.copytree(small_shop_landing, root / "pristine")
    with pytest.MonkeyPatch.context() as mp:
        # dbt's profile reads the data folder from the environment, Dagster from the resources.
        mp.setenv("TESSERA_DATA_DIR", str(root))
        shop = Shop(root=root)
        result = run_gated(shop, partition_key=CAMPAIGN_DATE)
        assert result.success, "the clean baseline build failed"
        shop.baseline = fingerprints(shop)
        yield shop


@pytest.fixture(autouse=True)
def _data_dir_is_the_shop(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite-wide isolation points TESSERA_DATA_DIR elsewhere per test; dbt needs the shop."""
    monkeypatch.setenv("TESSERA_DATA_DIR", str(shop.root))
