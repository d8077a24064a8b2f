"""Resources shared by every domain: the warehouse, the data folders and dbt.

The environment switch lives here and only here: assets receive typed resources and never read
environment variables themselves.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource
from packaging import version

from orchestration.settings import DBT_PROJECT_DIR, load_settings


class Warehouse(DuckDBResource):
    """The DuckDB warehouse; its connections close even when the step using them raises.

    DuckDBResource skips close() on an exception: in an in-process run the open handle would
    then lock the file against dbt and every later step.
    """

    @contextlib.contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with super().get_connection() as con:
            try:
                yield con
            finally:
                con.close()


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


class TesseraDbtCli(DbtCliResource):
    """dbt from this environment, without a `dbt --version` subprocess per run.

    dagster-dbt asks the executable for its version once per run (about 6 s of imports); the
    executable is the dbt-core installed beside us, so its package version is the answer.
    """

    @functools.cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))


def build_resources(data_dir: Path | None = None) -> dict[str, object]:
    """The resource set for a data folder (default: ``TESSERA_DATA_DIR`` or ``./data``)."""
    settings = load_settings()
    root = (data_dir or settings.data_dir).resolve()
    return {
        "warehouse": Warehouse(database=str(root / "warehouse.duckdb")),
        "storage": DataStorage(data_dir=str(root)),
        "dbt": TesseraDbtCli(
            project_dir=str(DBT_PROJECT_DIR),
            profiles_dir=str(DBT_PROJECT_DIR),
            # The dbt of this environment, also when the venv's bin is not on PATH.
            dbt_executable=str(Path(sys.executable).parent / "dbt"),
        ),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=build_resources())
