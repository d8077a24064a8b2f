"""Small frames shared by the activation unit tests."""

import pytest

from tessera.activations.testing import make_messages


@pytest.fixture
def messages_factory():
    return make_messages


@pytest.fixture
def setup(tmp_path, sink):
    """A tiny warehouse (test_assets._warehouse) and the resources the activation assets use."""
    from dagster_duckdb import DuckDBResource

    from tessera.orchestration.defs.resources import DataStorage
    from tests.integration.activations.test_assets import _warehouse

    db = tmp_path / "warehouse.duckdb"
    _warehouse(db)
    base = {
        "warehouse": DuckDBResource(database=str(db)),
        "storage": DataStorage(data_dir=str(sink.folder.parent)),
    }
    return db, base, sink


@pytest.fixture
def sink(tmp_path):
    from tessera.activations.sink import running_sink

    with running_sink(tmp_path / "data", seed=3) as handle:
        yield handle
