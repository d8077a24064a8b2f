"""Tessera's runtime settings, read from the environment in one place."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
#: The demo shop's campaign catalog, shipped with the package.
DEMO_CATALOG = Path(__file__).resolve().parent / "campaigns" / "catalog.yml"


#: The only spellings a boolean setting may take (case-insensitive, surrounding spaces ignored).
TRUE_TEXTS = ("true", "1", "yes", "on")
FALSE_TEXTS = ("false", "0", "no", "off")

_C = TypeVar("_C", bound=str)


class SettingsError(ValueError):
    """An environment variable or setting has a value Tessera does not accept."""


def parse_bool(name: str, value: object, default: bool = False) -> bool:
    """The one parser of boolean settings (environment variables and resource fields).

    ``None`` and the empty string mean "unset" (``default``); true/false, 1/0, yes/no and on/off
    are accepted in any case with surrounding spaces. Anything else (``y``, ``t``, ``enabled``)
    is an error naming the variable: guessing would turn a typo in a safety switch into sends.
    """
    if isinstance(value, bool):
        return value
    if value is None:
        return default
    text = str(value).strip().lower()
    if text == "":
        return default
    if text in TRUE_TEXTS:
        return True
    if text in FALSE_TEXTS:
        return False
    raise SettingsError(
        f"{name}={value!r} is not a boolean; use one of "
        f"{', '.join(TRUE_TEXTS)} (on) or {', '.join(FALSE_TEXTS)} (off), in any case"
    )


def parse_choice(name: str, value: object, allowed: tuple[_C, ...]) -> _C:
    """An enumerated setting, exactly as written: ``Hold`` or ``hold `` for ``hold`` is an error
    (a near miss may be a different intent; we do not guess which)."""
    if isinstance(value, str) and value in allowed:
        return value  # type: ignore[return-value]
    raise SettingsError(
        f"{name}={value!r} is not allowed; use exactly one of {', '.join(allowed)} (lower case)"
    )


def env_bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    """A boolean environment variable through :func:`parse_bool`."""
    return parse_bool(name, env.get(name), default)


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole-number environment variable; anything else is an error naming it."""
    value = env.get(name)
    if value is None or str(value).strip() == "":
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a whole number") from None


def env_date(env: Mapping[str, str], name: str, default: str) -> str:
    """An ISO date (YYYY-MM-DD) environment variable; anything else is an error naming it."""
    import datetime as dt

    value = (env.get(name) or default).strip()
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a date; use YYYY-MM-DD") from None
    return value


def env_timezone(env: Mapping[str, str], name: str = "TESSERA_TIMEZONE") -> str:
    """An IANA timezone name (e.g. UTC, Europe/Berlin); an unknown one is an error naming it."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    value = env.get(name, "UTC")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"{name}={value!r} is not an IANA timezone (e.g. UTC, Europe/Berlin)"
        ) from None
    return value


@dataclass(frozen=True)
class DataPaths:
    """The layout of a data folder, defined once: every reader and writer of these paths (the
    settings, the Dagster resources, the CLIs, dbt's profile through ``TESSERA_DATA_DIR``) gets
    them from here."""

    root: Path

    @property
    def landing_dir(self) -> Path:
        """The shop's files, one folder per table (``landing/<table>/``)."""
        return self.root / "landing"

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB warehouse; dbt's profile opens ``$TESSERA_DATA_DIR/warehouse.duckdb``."""
        return self.root / WAREHOUSE_FILE

    @property
    def models_dir(self) -> Path:
        """The model registry (versions, champion pointer)."""
        return self.root / "models"

    @property
    def outbox_dir(self) -> Path:
        """File activations and the send ledgers."""
        return self.root / "outbox"

    @property
    def dbt_target_dir(self) -> Path:
        """dbt's artefacts (compiled SQL, run_results.json, dbt.log) of in-process runs."""
        return self.root / "dbt_target"

    @property
    def dagster_home(self) -> Path:
        """The Dagster instance of `tessera run` when ``DAGSTER_HOME`` is not set."""
        return self.root / "dagster_home"


#: The warehouse file's name inside the data folder (dbt_project/profiles.yml spells it too;
#: tests/unit/test_settings.py checks that the two agree).
WAREHOUSE_FILE = "warehouse.duckdb"
#: The values TESSERA_EXECUTOR takes (Settings.executor).
EXECUTORS = ("multiprocess", "in_process", "k8s")
#: The data folder when TESSERA_DATA_DIR is not set (the profile's fallback ``../data`` from
#: dbt_project/ is the same folder).
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
#: DuckDB's memory cap when TESSERA_DUCKDB_MEMORY_LIMIT is not set (the profile's fallback too).
DEFAULT_DUCKDB_MEMORY_LIMIT = "4GB"


@dataclass(frozen=True)
class Settings:
    """Tessera's one typed settings object: where data lives and how the daily partitions are
    laid out.

    Every field has an environment variable (prefix ``TESSERA_``) read by :func:`load_settings`;
    the defaults run the embedded demo shop in ``./data``. The core CLIs read it directly; the
    Dagster shell builds every resource from it (``build_resources(env)``). Activation settings
    (providers, live sends, kill switch) are parsed from the same environment by the activations
    package.
    """

    data_dir: Path
    timezone: str
    partitions_start: str
    demo_customers: int
    demo_seed: int
    catalog_path: Path
    #: DuckDB's memory_limit for the warehouse (dbt and the Python steps); above it, DuckDB
    #: spills to disk beside the warehouse instead of growing.
    duckdb_memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT
    #: How the Dagster daily job runs its steps: ``multiprocess`` (Dagster's default, one process
    #: per step), ``in_process``, or ``k8s`` (a Kubernetes pod per step, from dagster-k8s; see
    #: docs/deploy.md for the volume it needs). ``tessera run`` always runs in process.
    executor: str = "multiprocess"

    @property
    def paths(self) -> DataPaths:
        return DataPaths(self.data_dir)

    @property
    def landing_dir(self) -> Path:
        return self.paths.landing_dir

    @property
    def warehouse_path(self) -> Path:
        return self.paths.warehouse_path

    @property
    def models_dir(self) -> Path:
        return self.paths.models_dir

    @property
    def outbox_dir(self) -> Path:
        return self.paths.outbox_dir


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``env`` (default: the process environment, read now).

    A malformed value is a :class:`SettingsError` naming the variable.
    """
    env = dict(os.environ if env is None else env)
    data_dir = Path(env.get("TESSERA_DATA_DIR") or DEFAULT_DATA_DIR).resolve()
    return Settings(
        data_dir=data_dir,
        timezone=env_timezone(env),
        partitions_start=env_date(env, "TESSERA_PARTITIONS_START", "2025-01-01"),
        demo_customers=env_int(env, "TESSERA_DEMO_CUSTOMERS", 20000),
        demo_seed=env_int(env, "TESSERA_DEMO_SEED", 42),
        catalog_path=Path(env.get("TESSERA_CATALOG") or DEMO_CATALOG).resolve(),
        duckdb_memory_limit=env.get("TESSERA_DUCKDB_MEMORY_LIMIT") or DEFAULT_DUCKDB_MEMORY_LIMIT,
        executor=parse_choice(
            "TESSERA_EXECUTOR", env.get("TESSERA_EXECUTOR") or "multiprocess", EXECUTORS
        ),
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
