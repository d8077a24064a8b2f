"""Runs dbt in-process on a data folder and reads the warehouse it builds (dbt tests' harness)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
from dbt.cli.main import dbtRunner, dbtRunnerResult
from dbt.contracts.graph.manifest import Manifest
from dbt_tiny_shop import AS_OF

from tessera.orchestration.dbt_inprocess import release_duckdb
from tessera.settings import DBT_PROJECT_DIR, environment

#: Few snapshots keep the tiny build quick; snapshot_end is fixed so the dates are known.
TINY_VARS = {"as_of": AS_OF, "snapshot_end": AS_OF, "snapshot_count": 3, "snapshot_every_days": 7}


@dataclass
class Warehouse:
    """A data folder with warehouse.duckdb, and the dbt artefacts folder used to build it."""

    data_dir: Path
    target_dir: Path

    @property
    def path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(sql, params or []).df()

    def execute(self, sql: str, params: list | None = None) -> None:
        with duckdb.connect(str(self.path)) as con:
            con.execute(sql, params or [])

    def copy_to(self, data_dir: Path) -> Warehouse:
        data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.path, data_dir / "warehouse.duckdb")
        return Warehouse(data_dir=data_dir, target_dir=self.target_dir)

    def dbt(self, *args: str, vars: dict | None = None) -> dbtRunnerResult:
        return run_dbt(self.data_dir, self.target_dir, *args, vars=vars)


def run_dbt(
    data_dir: Path,
    target_dir: Path,
    *args: str,
    vars: dict | None = None,
    target: str | None = None,
) -> dbtRunnerResult:
    """Invoke dbt in-process on the project, with the warehouse in ``data_dir`` (or on the
    profile's ``target``, e.g. ``postgres``)."""
    cli = [
        *args,
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(target_dir),
    ]  # fmt: skip
    if target is not None:
        cli += ["--target", target]
    if vars is not None:
        cli += ["--vars", repr(vars)]
    with environment(TESSERA_DATA_DIR=str(data_dir)):
        try:
            return dbtRunner(manifest=_parsed_manifest(target_dir, target)).invoke(cli)
        finally:
            release_duckdb()


_MANIFESTS: dict[Path, Manifest] = {}


def _parsed_manifest(target_dir: Path, target: str | None = None) -> Manifest:
    """Parse the project once per target folder: parsing dominates a tiny build's time, and
    the manifest does not depend on vars (they are read when models compile). A folder holds
    one profile target's manifest (dispatched macros differ per adapter)."""
    if target_dir not in _MANIFESTS:
        result = dbtRunner().invoke(
            ["parse", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir",
             str(DBT_PROJECT_DIR), "--target-path", str(target_dir)]
            + (["--target", target] if target else [])
        )  # fmt: skip
        if not result.success:
            raise RuntimeError(f"dbt parse failed: {result.exception}")
        _MANIFESTS[target_dir] = result.result
    return _MANIFESTS[target_dir]


def failures(result: dbtRunnerResult) -> list[str]:
    """Node ids and messages of every node that did not pass (empty when all passed)."""
    if result.result is None:
        return [repr(result.exception)]
    return [
        f"{r.node.unique_id}: {r.status} {r.message}"
        for r in result.result.results
        if str(r.status) not in ("success", "pass")
    ]
