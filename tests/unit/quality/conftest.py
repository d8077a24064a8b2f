"""Fixtures of the quality unit tests: an in-memory warehouse holding a tiny clean shop."""

from __future__ import annotations

import duckdb
import pytest
from quality_shop import clean_shop


@pytest.fixture
def shop() -> duckdb.DuckDBPyConnection:
    con = clean_shop()
    yield con
    con.close()
