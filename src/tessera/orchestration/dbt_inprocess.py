"""dbt invoked inside the Dagster step's process, its results turned into Dagster events.

dagster-dbt runs dbt as a subprocess: each invocation pays dbt's imports, the adapter set-up and a
(partial) parse, about 10 s, while one campaign date's dbt work is 1-3 s on the demo shop. Here the
project is parsed once per process and every later invocation reuses that manifest through
``dbtRunner(manifest=...)``. Selection (subsets, asset checks) is computed by dagster-dbt's own
function, and its event class converts dbt's results, so assets, checks and metadata are the ones a
subprocess run would report. Those are private dagster-dbt and dbt-duckdb internals: all of them
are reached through ``dbt_internals``, and nothing here imports dagster-dbt or dbt directly.
"""

import dataclasses
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from tessera import settings
from tessera.orchestration import dbt_internals
from tessera.orchestration.dbt_internals import release_duckdb

__all__ = ["DbtBuildError", "DbtProjectPaths", "InProcessDbtInvocation", "release_duckdb"]

log = logging.getLogger(__name__)

#: dbt events that carry one node's result (what dagster-dbt turns into outputs and checks).
RESULT_EVENTS = frozenset({"LogModelResult", "LogTestResult", "LogSeedResult", "LogSnapshotResult"})

#: Node statuses that fail a build (warn and skipped do not).
FAILED = frozenset({"error", "fail", "runtime error"})

#: dbt keeps global state (flags, adapters): one invocation at a time per process.
_LOCK = threading.Lock()
_MANIFESTS: dict[tuple[str, str, float], Any] = {}


class DbtBuildError(Exception):
    """dbt reported failing nodes or could not run; the message lists them with dbt's reason."""


@dataclasses.dataclass(frozen=True)
class DbtProjectPaths:
    """Where the project, its profile, this data folder's dbt artefacts and its warehouse live."""

    project_dir: Path
    profiles_dir: Path
    target_dir: Path
    #: The DuckDB file the profile points dbt at (read to see which tables exist already).
    warehouse: Path

    def flags(self) -> list[str]:
        return [
            "--project-dir", str(self.project_dir),
            "--profiles-dir", str(self.profiles_dir),
            "--target-path", str(self.target_dir),
            "--log-path", str(self.target_dir),
            "--no-send-anonymous-usage-stats",
            "--quiet",
        ]  # fmt: skip


def parsed_manifest(paths: DbtProjectPaths, definitions_manifest: Path) -> Any:
    """The project's parsed manifest, parsed once per process (and again when the manifest the
    definitions were loaded from changes, i.e. after someone re-ran ``dbt parse``).

    One parse serves every data folder: the warehouse file is always ``warehouse.duckdb``, so
    relation names do not depend on the folder; the profile is read again by each invocation.
    """
    stamp = definitions_manifest.stat().st_mtime if definitions_manifest.exists() else 0.0
    key = (str(paths.project_dir), str(paths.profiles_dir), stamp)
    if key not in _MANIFESTS:
        started = time.monotonic()
        paths.target_dir.mkdir(parents=True, exist_ok=True)
        result = dbt_internals.dbt_runner().invoke(["parse", *paths.flags()])
        release_duckdb()
        if not result.success:
            raise DbtBuildError(f"dbt could not parse {paths.project_dir}: {result.exception}")
        _MANIFESTS.clear()
        _MANIFESTS[key] = result.result
        log.info("dbt project parsed in-process in %.1fs", time.monotonic() - started)
    return _MANIFESTS[key]


@dataclasses.dataclass
class InProcessDbtInvocation:
    """One ``dbt <command>`` run in this process for an asset step; ``stream()`` runs it."""

    args: Sequence[str]
    paths: DbtProjectPaths
    definitions_manifest: Path
    context: dg.AssetExecutionContext
    #: Environment variables set while dbt runs (the profile reads TESSERA_DATA_DIR).
    environment: dict[str, str] = dataclasses.field(default_factory=dict)
    raise_on_error: bool = True
    failures: list[str] = dataclasses.field(default_factory=list)

    def stream(self) -> Iterator[Any]:
        """Run dbt and yield dagster-dbt's events for each result (outputs, check results).

        Every result is yielded before a failure is raised, so the checks that did run show in
        the UI next to the error.
        """
        context = self.context
        manifest, translator, project = dbt_internals.manifest_translator_project(
            context.assets_def
        )
        # The same selection dagster-dbt computes for a subprocess (subsets, selected checks),
        # passed as arguments: in-process there is no command-line length limit to work around.
        selection, indirect = dbt_internals.subset_selection(context, manifest, translator)
        assets_def = context.assets_def
        if (
            indirect is None
            and assets_def.keys_by_output_name != assets_def.node_keys_by_output_name
        ):
            # A subset names its models, and dbt's default (eager) selection also runs every
            # test touching one of them, e.g. a relationship test from a model the subset leaves
            # out. Those run (they check the new rows against what is there) unless that other
            # model's table does not exist yet (a fresh warehouse), where they could only fail.
            selection = _exclude(
                selection, self._tests_on_missing_models(manifest, translator, project)
            )
        cli = [*self.args, *selection, *self.paths.flags()]
        if indirect:
            cli += ["--indirect-selection", indirect]

        raw_events: list[dict[str, Any]] = []

        def collect(msg: Any) -> None:
            if msg.info.name in RESULT_EVENTS:
                raw_events.append(dbt_internals.event_to_dict(msg))

        started = time.monotonic()
        with _LOCK, settings.environment(**self.environment):
            dbt_manifest = parsed_manifest(self.paths, self.definitions_manifest)
            context.log.info(f"Running dbt in-process: `dbt {' '.join(cli)}`")
            try:
                runner = dbt_internals.dbt_runner(manifest=dbt_manifest, callbacks=[collect])
                result = runner.invoke(cli)
            finally:
                release_duckdb()

        for raw in raw_events:
            unique_id = raw["data"]["node_info"]["unique_id"]
            status = _status(raw)
            if status in FAILED:
                self.failures.append(f"{unique_id}: {status}: {_plain(raw['info']['msg'])}")
            if unique_id.startswith("unit_test."):
                continue  # dbt unit tests are not Dagster assets or checks (dagster-dbt skips them)
            if unique_id not in manifest["nodes"]:
                # The project changed since the definitions loaded (reload them to see it).
                context.log.warning(f"dbt ran {unique_id}, unknown to the loaded definitions")
                continue
            yield from dbt_internals.asset_events(
                raw,
                manifest=manifest,
                translator=translator,
                context=context,
                target_path=self.paths.target_dir,
                project=project,
            )
        counts = _status_counts(raw_events)
        context.log.info(
            f"dbt {' '.join(self.args)}: {counts} in {time.monotonic() - started:.1f}s "
            f"(artefacts in {self.paths.target_dir})"
        )
        if result.exception is not None and not self.failures:
            self.failures.append(f"dbt did not run: {result.exception}")
        if not result.success and self.raise_on_error:
            raise DbtBuildError(
                f"dbt {' '.join(self.args)} failed:\n"
                + "\n".join(f"  - {line}" for line in self.failures or ["unknown error"])
                + f"\nCompiled SQL and run_results.json: {self.paths.target_dir}"
            )

    def _tests_on_missing_models(self, manifest: Any, translator: Any, project: Any) -> list[str]:
        """Tests depending on a model that is neither built in this step nor in the warehouse."""
        selected = {
            uid
            for uid, node in manifest["nodes"].items()
            if node["resource_type"] == "model"
            and translator.get_asset_spec(manifest, uid, project).key
            in self.context.selected_asset_keys
        }
        try:
            existing = _existing_relations(self.paths.warehouse)
        except Exception as exc:  # noqa: BLE001 - unknown: fall back to dbt's own selection
            self.context.log.warning(f"could not list the warehouse's tables ({exc}); dbt selects")
            return []
        missing = {
            uid
            for uid, node in manifest["nodes"].items()
            if node["resource_type"] == "model"
            and uid not in selected
            and (node["schema"], node.get("alias") or node["name"]) not in existing
        }
        return sorted(
            node["name"]
            for node in manifest["nodes"].values()
            if node["resource_type"] == "test"
            and missing & set(node.get("depends_on", {}).get("nodes", []))
        )


def _existing_relations(path: Path) -> set[tuple[str, str]]:
    """(schema, name) of every table and view in the warehouse (empty if there is none yet)."""
    import duckdb

    if not path.exists():
        return set()
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "union all select schema_name, view_name from duckdb_views() where not internal"
        ).fetchall()
    return {(schema, name) for schema, name in rows}


def _exclude(selection: list[str], names: list[str]) -> list[str]:
    """The selection arguments with ``names`` added to their ``--exclude``."""
    if not names:
        return list(selection)
    out = list(selection)
    if "--exclude" in out:
        i = out.index("--exclude") + 1
        out[i] = f"{out[i]} {' '.join(names)}"
    else:
        out += ["--exclude", " ".join(names)]
    return out


def _status(raw: dict[str, Any]) -> str:
    """A result's status: the node's, or the event's own for unit tests (they have none)."""
    return str(raw["data"]["node_info"].get("node_status") or raw["data"].get("status"))


def _plain(text: str) -> str:
    """dbt's console line without its colour codes."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _status_counts(raw_events: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for raw in raw_events:
        status = _status(raw)
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing ran"
