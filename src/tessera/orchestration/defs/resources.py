"""Resources shared by every domain: the warehouse, the data folders and dbt.

The environment switch lives here and only here: assets receive typed resources and never read
environment variables themselves.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource
from packaging import version

from tessera.settings import DBT_PROJECT_DIR, environment, load_settings


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


#: The dbt of this environment (the venv's bin beside this Python), also when it is not on PATH.
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")


class TesseraDbtCli(DbtCliResource):
    """dbt for the warehouse assets: in this process by default, as a subprocess on request.

    In-process (``in_process=True``) the project is parsed once per process and each
    ``cli(...).stream()`` reuses that parse, which saves dbt's ~10 s start-up per invocation
    (see ``tessera.orchestration.dbt_inprocess``); its artefacts (compiled SQL, run_results.json,
    dbt.log) go to ``<data_dir>/dbt_target``. The subprocess mode is dagster-dbt's own.
    Either way dbt's profile finds the warehouse through ``TESSERA_DATA_DIR``, set here to
    ``data_dir`` for the invocation so that dbt and the other assets share one warehouse.
    """

    in_process: bool = True
    data_dir: str | None = None

    @functools.cached_property
    def _cli_version(self) -> version.Version:
        # dagster-dbt asks the executable for its version once per run (about 6 s of imports);
        # the executable is the dbt-core installed beside us, so its package version is the answer.
        return version.parse(importlib.metadata.version("dbt-core"))

    @property
    def _data_dir(self) -> Path:
        # What the profile itself falls back on: the environment, then dbt_project/../data.
        folder = self.data_dir or os.environ.get("TESSERA_DATA_DIR")
        return Path(folder or Path(self.project_dir) / ".." / "data").resolve()

    def cli(self, args, *, raise_on_error=True, manifest=None, dagster_dbt_translator=None,
            context=None, target_path=None):  # fmt: skip
        """``dbt <args>`` for an asset step, in this process unless ``in_process`` is off."""
        folder = {"TESSERA_DATA_DIR": str(self._data_dir)}
        if not self.in_process or context is None or manifest is not None:
            # dagster-dbt copies the environment into the subprocess when cli() is called.
            with environment(**folder):
                return super().cli(
                    args,
                    raise_on_error=raise_on_error,
                    manifest=manifest,
                    dagster_dbt_translator=dagster_dbt_translator,
                    context=context,
                    target_path=target_path,
                )
        from tessera.orchestration.dbt_inprocess import DbtProjectPaths, InProcessDbtInvocation

        project_dir = Path(self.project_dir)
        return InProcessDbtInvocation(
            args=list(args),
            paths=DbtProjectPaths(
                project_dir=project_dir,
                profiles_dir=Path(self.profiles_dir or project_dir),
                target_dir=Path(target_path) if target_path else self._data_dir / "dbt_target",
                warehouse=self._data_dir / "warehouse.duckdb",
            ),
            definitions_manifest=project_dir / "target" / "manifest.json",
            context=context,
            environment=folder,
            raise_on_error=raise_on_error,
        )


def build_resources(data_dir: Path | None = None) -> dict[str, object]:
    """The resource set for a data folder (default: ``TESSERA_DATA_DIR`` or ``./data``)."""
    settings = load_settings()
    root = (data_dir or settings.data_dir).resolve()
    return {
        "warehouse": Warehouse(
            database=str(root / "warehouse.duckdb"),
            connection_config={"memory_limit": settings.duckdb_memory_limit},
        ),
        "storage": DataStorage(data_dir=str(root)),
        "dbt": TesseraDbtCli(
            project_dir=str(DBT_PROJECT_DIR),
            profiles_dir=str(DBT_PROJECT_DIR),
            # The dbt of this environment, also when the venv's bin is not on PATH.
            dbt_executable=DBT_EXECUTABLE,
            data_dir=str(root),
        ),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=build_resources())
