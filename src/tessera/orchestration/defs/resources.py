"""Resources shared by every domain: the warehouse, the data folders and dbt.

The environment switch lives here and only here: assets receive typed resources and never read
environment variables themselves.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource
from packaging import version

from tessera.journeys.paths import JourneyPaths
from tessera.orchestration.defs.activations.resources import build_activation_settings
from tessera.orchestration.defs.campaigns.resources import CampaignCatalog
from tessera.settings import DBT_PROJECT_DIR, DataPaths, environment, load_settings


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
    """The data folder: landing files, model registry and outbox (laid out by
    :class:`tessera.settings.DataPaths`)."""

    data_dir: str

    @property
    def paths(self) -> DataPaths:
        return DataPaths(Path(self.data_dir))

    @property
    def root(self) -> Path:
        return self.paths.root

    @property
    def landing_dir(self) -> Path:
        return self.paths.landing_dir

    @property
    def models_dir(self) -> Path:
        return self.paths.models_dir

    @property
    def outbox_dir(self) -> Path:
        return self.paths.outbox_dir


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
        # build_resources always sets data_dir; a hand-built resource gets the settings' folder.
        return Path(self.data_dir).resolve() if self.data_dir else load_settings().data_dir

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
        paths = DataPaths(self._data_dir)
        return InProcessDbtInvocation(
            args=list(args),
            paths=DbtProjectPaths(
                project_dir=project_dir,
                profiles_dir=Path(self.profiles_dir or project_dir),
                target_dir=Path(target_path) if target_path else paths.dbt_target_dir,
                warehouse=paths.warehouse_path,
            ),
            definitions_manifest=project_dir / "target" / "manifest.json",
            context=context,
            environment=folder,
            raise_on_error=raise_on_error,
        )


def build_resources(
    env: Mapping[str, str] | None = None, *, data_dir: Path | None = None
) -> dict[str, object]:
    """Every resource of the code location, from one :class:`~tessera.settings.Settings`.

    ``env`` is the environment to read (default: the process environment, read now);
    ``data_dir`` overrides its data folder (tests and the benchmark point it at their own).
    A malformed variable raises here, naming it, so nothing loads and nothing is sent.
    """
    settings = load_settings(env)
    paths = DataPaths((data_dir or settings.data_dir).resolve())
    return {
        "warehouse": Warehouse(
            database=str(paths.warehouse_path),
            connection_config={"memory_limit": settings.duckdb_memory_limit},
        ),
        "storage": DataStorage(data_dir=str(paths.root)),
        "dbt": TesseraDbtCli(
            project_dir=str(DBT_PROJECT_DIR),
            profiles_dir=str(DBT_PROJECT_DIR),
            # The dbt of this environment, also when the venv's bin is not on PATH.
            dbt_executable=DBT_EXECUTABLE,
            data_dir=str(paths.root),
        ),
        "campaign_catalog": CampaignCatalog(
            path=str(settings.catalog_path),
            journey_contacts_path=str(JourneyPaths.of(paths.root).contacts_path),
            timezone=settings.timezone,
        ),
        "activation": build_activation_settings(env),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=build_resources())
