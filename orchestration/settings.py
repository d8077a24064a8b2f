"""Tessera's runtime settings, read from the environment in one place."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"


@dataclass(frozen=True)
class Settings:
    """Where data lives and how the daily partitions are laid out.

    Every field has an environment variable (prefix ``TESSERA_``); the defaults run the embedded
    demo shop in ``./data``.
    """

    data_dir: Path
    timezone: str
    partitions_start: str
    demo_customers: int
    demo_seed: int
    catalog_path: Path
    #: DuckDB's memory_limit for the warehouse (dbt and the Python steps); above it, DuckDB
    #: spills to disk beside the warehouse instead of growing.
    duckdb_memory_limit: str = "4GB"

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Read settings from ``env`` (default: the process environment)."""
    env = dict(os.environ if env is None else env)
    data_dir = Path(env.get("TESSERA_DATA_DIR", PROJECT_ROOT / "data")).resolve()
    return Settings(
        data_dir=data_dir,
        timezone=env.get("TESSERA_TIMEZONE", "UTC"),
        partitions_start=env.get("TESSERA_PARTITIONS_START", "2025-01-01"),
        demo_customers=int(env.get("TESSERA_DEMO_CUSTOMERS", "20000")),
        demo_seed=int(env.get("TESSERA_DEMO_SEED", "42")),
        catalog_path=Path(
            env.get("TESSERA_CATALOG", PROJECT_ROOT / "campaigns" / "catalog.yml")
        ).resolve(),
        duckdb_memory_limit=env.get("TESSERA_DUCKDB_MEMORY_LIMIT", "4GB"),
    )


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables inside the block (for subprocesses and resources it builds),
    restoring what was there before on the way out."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
