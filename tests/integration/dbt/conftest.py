"""Fixtures for the dbt project tests: the tiny shop built once per session, and private copies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dbt_harness import TINY_VARS, Warehouse, failures
from dbt_tiny_shop import write_tiny_shop


@pytest.fixture(scope="session")
def tiny_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """The tiny hand-written shop, built once with `dbt build` (read it, do not change it)."""
    root = tmp_path_factory.mktemp("dbt-tiny")
    warehouse = Warehouse(data_dir=root / "data", target_dir=root / "target")
    warehouse.data_dir.mkdir()
    write_tiny_shop(warehouse.path)
    result = warehouse.dbt("build", vars=TINY_VARS)
    warehouse.build_result = result  # type: ignore[attr-defined]
    yield warehouse


@pytest.fixture
def warehouse_copy(tiny_warehouse: Warehouse, tmp_path: Path) -> Warehouse:
    """A private copy of the built tiny warehouse that a test may change."""
    assert not failures(tiny_warehouse.build_result)  # type: ignore[attr-defined]
    return tiny_warehouse.copy_to(tmp_path / "data")
