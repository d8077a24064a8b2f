"""Fixtures of the review app's unit tests."""

from pathlib import Path

import pytest
from review_data import build_warehouse


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return build_warehouse(tmp_path / "warehouse.duckdb")
