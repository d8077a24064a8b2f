"""The one place Tessera uses private dagster-dbt, dbt-core and dbt-duckdb internals.

The in-process dbt runner (``dbt_inprocess.py``) needs what dagster-dbt does inside its own
subprocess runner: the manifest and translator of a ``@dbt_assets`` definition, the selection of
a subset, the conversion of dbt's result events into Dagster events; and it must close
dbt-duckdb's process-wide database after each invocation. None of that is public API, so every
such symbol is listed in :data:`INTERNALS` and reached through :func:`resolve`, which names the
symbol and the installed versions when an upgrade removed it. ``problems()`` checks them all
(names and the keyword parameters passed here); the contract test runs it, so an upgrade that
changes one fails there first, not in a materialization.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The distributions whose internals are used here (named in every failure).
PACKAGES = ("dagster", "dagster-dbt", "dbt-core", "dbt-common", "dbt-adapters", "dbt-duckdb")


class DbtInternalsChanged(RuntimeError):
    """An upgrade removed or changed a private dagster-dbt / dbt symbol Tessera relies on."""


@dataclass(frozen=True)
class Internal:
    """A symbol (``attr`` may be dotted: ``Class.member``) and the keyword parameters passed."""

    module: str
    attr: str
    params: tuple[str, ...] = ()
    why: str = ""

    @property
    def name(self) -> str:
        return f"{self.module}.{self.attr}"


_ASSET_UTILS = "dagster_dbt.asset_utils"
_CLI_EVENT = "dagster_dbt.core.dbt_cli_event"
_DUCKDB = "dbt.adapters.duckdb.connections"

MANIFEST_AND_TRANSLATOR = Internal(
    _ASSET_UTILS,
    "get_manifest_and_translator_from_dbt_assets",
    ("dbt_assets",),
    "the manifest, translator and project of the step's @dbt_assets definition",
)
SUBSET_SELECTION = Internal(
    _ASSET_UTILS,
    "get_subset_selection_for_context",
    (
        "context",
        "manifest",
        "select",
        "exclude",
        "selector",
        "dagster_dbt_translator",
        "current_dbt_indirect_selection_env",
    ),
    "the dbt selection arguments of the step's subset and selected checks",
)
SELECT_KEY = Internal(_ASSET_UTILS, "DAGSTER_DBT_SELECT_METADATA_KEY", why="op tag: --select")
EXCLUDE_KEY = Internal(_ASSET_UTILS, "DAGSTER_DBT_EXCLUDE_METADATA_KEY", why="op tag: --exclude")
SELECTOR_KEY = Internal(_ASSET_UTILS, "DAGSTER_DBT_SELECTOR_METADATA_KEY", why="op tag: selector")
CORE_EVENT = Internal(
    _CLI_EVENT,
    "DbtCoreCliEventMessage",
    ("raw_event", "event_history_metadata"),
    "wraps one dbt result event as the subprocess runner does",
)
TO_ASSET_EVENTS = Internal(
    _CLI_EVENT,
    "DbtCoreCliEventMessage.to_default_asset_events",
    ("manifest", "dagster_dbt_translator", "context", "target_path", "project"),
    "turns it into outputs, materializations and check results",
)
MSG_TO_DICT = Internal(
    "dbt_common.events.functions", "msg_to_dict", ("msg",), "a dbt event as its JSON log dict"
)
DUCKDB_ENV = Internal(
    _DUCKDB, "DuckDBConnectionManager._ENV", why="dbt-duckdb's process-wide database, closed"
)
DUCKDB_CLOSE_ALL = Internal(_DUCKDB, "DuckDBConnectionManager.close_all_connections")
#: Public API, listed because the runner depends on reusing a parsed manifest and on callbacks.
DBT_RUNNER = Internal("dbt.cli.main", "dbtRunner", ("manifest", "callbacks"))

INTERNALS = (
    MANIFEST_AND_TRANSLATOR,
    SUBSET_SELECTION,
    SELECT_KEY,
    EXCLUDE_KEY,
    SELECTOR_KEY,
    CORE_EVENT,
    TO_ASSET_EVENTS,
    MSG_TO_DICT,
    DUCKDB_ENV,
    DUCKDB_CLOSE_ALL,
    DBT_RUNNER,
)


def installed_versions() -> str:
    """``dagster 1.13.27, dagster-dbt 0.29.27, ...`` for the packages whose internals are used."""
    found = []
    for dist in PACKAGES:
        try:
            found.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{dist} (not installed)")
    return ", ".join(found)


def _changed(internal: Internal, problem: str) -> str:
    return (
        f"{internal.name}: {problem}. Installed: {installed_versions()}. Tessera's in-process "
        "dbt runner relies on it: adapt tessera/orchestration/dbt_internals.py to this version "
        "or pin the previous one in pyproject.toml."
    )


def resolve(internal: Internal) -> Any:
    """The symbol's current value (looked up each time: ``_ENV`` changes); raises
    :class:`DbtInternalsChanged`, naming it and the installed versions, if it is gone."""
    try:
        obj: Any = importlib.import_module(internal.module)
        for part in internal.attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise DbtInternalsChanged(_changed(internal, f"not found ({exc})")) from exc
    return obj


def problems(internals: Sequence[Internal] = INTERNALS) -> list[str]:
    """One line per symbol that is gone or no longer takes the parameters passed to it."""
    out = []
    for internal in internals:
        try:
            obj = resolve(internal)
        except DbtInternalsChanged as exc:
            out.append(str(exc))
            continue
        if not internal.params:
            continue
        try:
            parameters = inspect.signature(obj).parameters
        except (TypeError, ValueError) as exc:
            out.append(_changed(internal, f"its signature cannot be read ({exc})"))
            continue
        missing = [p for p in internal.params if p not in parameters]
        if missing:
            out.append(
                _changed(
                    internal,
                    f"no parameter {', '.join(missing)} (it takes {', '.join(parameters)})",
                )
            )
    return out


# ------------------------------------------------------------------------------------------------
# What dbt_inprocess.py calls
# ------------------------------------------------------------------------------------------------


def manifest_translator_project(assets_def: Any) -> tuple[Mapping[str, Any], Any, Any]:
    """The manifest (as a dict), DagsterDbtTranslator and DbtProject of a @dbt_assets def."""
    return resolve(MANIFEST_AND_TRANSLATOR)([assets_def])


def subset_selection(context: Any, manifest: Mapping[str, Any], translator: Any) -> tuple:
    """(dbt selection arguments, indirect selection mode or None) for the step's subset,
    computed by dagster-dbt's own function from the op's select/exclude/selector tags."""
    tags = context.op.tags
    return resolve(SUBSET_SELECTION)(
        context=context,
        manifest=manifest,
        select=tags.get(resolve(SELECT_KEY)),
        exclude=tags.get(resolve(EXCLUDE_KEY)),
        selector=tags.get(resolve(SELECTOR_KEY)),
        dagster_dbt_translator=translator,
        current_dbt_indirect_selection_env=None,
    )


def event_to_dict(msg: Any) -> dict[str, Any]:
    """A dbt event message as the dict dbt writes to its JSON log."""
    return resolve(MSG_TO_DICT)(msg)


def asset_events(
    raw_event: dict[str, Any],
    *,
    manifest: Mapping[str, Any],
    translator: Any,
    context: Any,
    target_path: Path,
    project: Any,
) -> Iterator[Any]:
    """dagster-dbt's events (outputs, materializations, check results) for one dbt result."""
    event = resolve(CORE_EVENT)(raw_event=raw_event, event_history_metadata={})
    yield from event.to_default_asset_events(
        manifest=manifest,
        dagster_dbt_translator=translator,
        context=context,
        target_path=target_path,
        project=project,
    )


def dbt_runner(manifest: Any = None, callbacks: list | None = None) -> Any:
    """dbt's programmatic runner, reusing a parsed manifest when given one."""
    return resolve(DBT_RUNNER)(manifest=manifest, callbacks=callbacks)


def release_duckdb() -> None:
    """Close dbt-duckdb's in-process database.

    It outlives the invocation otherwise, holding the file's write lock, and DuckDB refuses a
    second connection to the same file with another configuration (the steps' own connections).
    """
    env = resolve(DUCKDB_ENV)
    if env is not None:
        env.close()
    resolve(DUCKDB_CLOSE_ALL)()
