"""Resources shared by every domain: the warehouse, the data folders and dbt.

The environment switch lives here and only here: assets receive typed resources and never read
environment variables themselves.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource

from orchestration.settings import DBT_PROJECT_DIR, load_settings


class DataStorage(dg.ConfigurableResource):
    """The data folder: landing files, model registry and outbox."""

    data_dir: str

    @property
    def root(self) -> Path:
        return Path(self.data_dir)

    @property
    def landing_dir(self) -> Path:
        return self.root / "landing"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def outbox_dir(self) -> Path:
        return self.root / "outbox"


def build_resources(data_dir: Path | None = None) -> dict[str, object]:
    """The resource set for a data folder (default: ``TESSERA_DATA_DIR`` or ``./data``)."""
    settings = load_settings()
    root = (data_dir or settings.data_dir).resolve()
    return {
        "warehouse": DuckDBResource(database=str(root / "warehouse.duckdb")),
        "storage": DataStorage(data_dir=str(root)),
        "dbt": DbtCliResource(
            project_dir=str(DBT_PROJECT_DIR),
            profiles_dir=str(DBT_PROJECT_DIR),
            # The dbt of this environment, also when the venv's bin is not on PATH.
            dbt_executable=str(Path(sys.executable).parent / "dbt"),
        ),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=build_resources())
