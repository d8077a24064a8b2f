"""Great Expectations over the warehouse itself: its SQL datasource on a DuckDB connection, and Data Docs.

GE runs each expectation as SQL through SQLAlchemy (duckdb-engine), on a duplicate of the caller's
DuckDB connection (``con.cursor()``), so it reads the same database (the one writer of the
warehouse file, or an in-memory one in tests) without opening the file a second time, and so
without a second configuration for it. What GE judges is a scratch table in an in-memory database
attached to that same DuckDB instance (a temporary table would be invisible to the duplicate): one
row per warehouse row, one column per rule. GE is imported lazily, and one GE context and
datasource serve every validation of a process (setting them up costs more than a validation).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb

#: The in-memory database, attached to the caller's DuckDB instance, that holds GE's scratch tables.
SCRATCH = "tessera_gx"
#: Name of the Data Docs site (and of its folder's role in the GE config).
SITE = "tessera"
#: Where Data Docs go, relative to the folder of the warehouse file (the data folder).
DATA_DOCS_SUBDIR = Path("quality") / "data_docs"
#: Data Docs pages kept per suite (one per Dagster run that validated it): about a quarter of
#: daily runs. Older run folders are removed when a new page is published, so a year of daily
#: runs does not keep a year of HTML. TESSERA_DATA_DOCS_KEEP_RUNS overrides it.
DATA_DOCS_KEEP_RUNS = 90


def data_docs_dir(database: str | Path) -> Path | None:
    """The Data Docs folder beside a warehouse file (``<data_dir>/quality/data_docs``); None for
    an in-memory or remote database."""
    text = str(database)
    if not text or text == ":memory:" or text.startswith(("md:", "motherduck:")):
        return None
    return Path(text).resolve().parent / DATA_DOCS_SUBDIR


class _BufferedCursor:
    """A DB-API cursor that fetches its result at once.

    duckdb-engine's cursors share their connection, and GE fetches a result after handing the
    connection back (which rolls it back): DuckDB would have dropped the pending result by then.
    Every statement GE sends here is an aggregate or a LIMITed select, so the buffer stays small.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._rows: list[tuple] = []
        self.description: Any = None

    def execute(self, statement: str, parameters: Any = None) -> None:
        self._inner.execute(statement, parameters)
        self.description = self._inner.description
        self._rows = list(self._inner.fetchall()) if self.description else []

    def fetchone(self) -> tuple | None:
        return self._rows.pop(0) if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[tuple]:
        size = size or 1
        out, self._rows = self._rows[:size], self._rows[size:]
        return out

    def fetchall(self) -> list[tuple]:
        out, self._rows = self._rows, []
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


Kind = Literal["share", "rows", "min"]


@dataclass(frozen=True)
class Expectation:
    """One expectation of a suite, at one severity.

    ``share``: at most ``max_share`` of the rows may have the boolean ``column`` true;
    ``rows``: the table has between ``min_value`` and ``max_value`` rows;
    ``min``: the smallest value of ``column`` lies between ``min_value`` and ``max_value``.
    """

    rule: str
    level: str  # "warn" or "error"
    kind: Kind
    column: str | None = None
    max_share: float = 0.0
    min_value: float | None = None
    max_value: float | None = None


@dataclass(frozen=True)
class ExpectationOutcome:
    name: str
    success: bool
    unexpected_count: int | None
    element_count: int | None
    #: The value GE observed (row count, column minimum); None for share expectations.
    observed: float | None = None


@dataclass
class GxRun:
    #: Per expectation (rule, level): how it fared.
    results: dict[tuple[str, str], ExpectationOutcome]
    rows: int
    #: file:// URL of the Data Docs index and of this validation's page, when a folder was given.
    data_docs: str | None = None
    page: str | None = None

    @property
    def outcomes(self) -> dict[str, ExpectationOutcome]:
        """Per rule, its outcome (the failing level when one fails)."""
        out: dict[str, ExpectationOutcome] = {}
        for (rule, _level), outcome in self.results.items():
            if rule not in out or not outcome.success:
                out[rule] = outcome
        return out


def _exception(info: Any) -> str | None:
    """The message of an exception GE caught (flat, or per metric), if any."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


class _Gx:
    """The process's GE context and SQL datasource; the datasource reads ``current``'s database."""

    lock = threading.RLock()
    context: Any = None
    source: Any = None
    current: duckdb.DuckDBPyConnection | None = None
    docs_sites: dict[str, str] = {}
    runs = 0

    @classmethod
    def connect(cls) -> Any:
        import duckdb_engine

        class _Connection(duckdb_engine.ConnectionWrapper):
            def cursor(self) -> Any:
                return _BufferedCursor(super().cursor())

        if cls.current is None:
            raise RuntimeError("Great Expectations ran outside a validation")
        cursor = cls.current.cursor()
        # GE names the scratch table unqualified in some statements: make its database the default.
        cursor.execute(f"use {SCRATCH}")
        return _Connection(cursor)

    @classmethod
    def setup(cls) -> tuple[Any, Any]:
        if cls.context is None:
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig
            from sqlalchemy.pool import NullPool

            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            # NullPool: every GE connection is a fresh duplicate of the current caller's one.
            cls.source = context.data_sources.add_sql(
                "tessera_warehouse", connection_string="duckdb:///:memory:",
                kwargs={"creator": cls.connect, "poolclass": NullPool},
            )  # fmt: skip
            cls.context = context
        return cls.context, cls.source

    @classmethod
    def site(cls, docs_dir: Path) -> str:
        """The Data Docs site writing to ``docs_dir`` (one per folder, added once)."""
        key = str(docs_dir)
        if key not in cls.docs_sites:
            name = f"{SITE}_{len(cls.docs_sites)}"
            cls.context.add_data_docs_site(
                name,
                {
                    "class_name": "SiteBuilder",
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": key,
                    },
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                },
            )
            cls.docs_sites[key] = name
        return cls.docs_sites[key]


def _gx_expectation(gx: Any, e: Expectation, index: int, rows: int) -> Any:
    meta = {"rule": e.rule, "level": e.level, "index": index}
    severity = "critical" if e.level == "error" else "warning"
    if e.kind == "share":
        # "share <= max_share" as the number of rows with the flag set: an aggregate, which GE
        # computes in the one query of the table's aggregates (a map expectation with `mostly`
        # would cost a query per column, and so twice the time).
        _low, most = count_bounds(None, e.max_share, float(rows))
        return gx.expectations.ExpectColumnSumToBeBetween(
            column=e.column, max_value=most, severity=severity, meta=meta
        )
    if e.kind == "rows":
        return gx.expectations.ExpectTableRowCountToBeBetween(
            min_value=None if e.min_value is None else int(e.min_value),
            max_value=None if e.max_value is None else int(e.max_value),
            severity=severity, meta=meta,
        )  # fmt: skip
    return gx.expectations.ExpectColumnMinToBeBetween(
        column=e.column, min_value=e.min_value, max_value=e.max_value, severity=severity,
        meta=meta,
    )  # fmt: skip


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


@contextlib.contextmanager
def scratch_table(con: duckdb.DuckDBPyConnection, name: str, select_sql: str) -> Iterator[str]:
    """The rows of ``select_sql`` as a table GE can read (in the in-memory database attached to
    ``con``'s DuckDB instance); its qualified name, valid inside the block only."""
    with _Gx.lock:
        _Gx.runs += 1
        table = f'{SCRATCH}.main."{name}__{_Gx.runs}"'
        con.execute(f"attach if not exists ':memory:' as {SCRATCH}")
        try:
            con.execute(f"create table {table} as {select_sql}")
            yield table
        finally:
            # Detached again, so dbt (which may share this DuckDB instance) never sees it.
            con.execute(f"detach database if exists {SCRATCH}")


def validate_table(
    con: duckdb.DuckDBPyConnection,
    name: str,
    table: str,
    expectations: Sequence[Expectation],
    data_docs_dir: Path | None = None,
    run_name: str | None = None,
) -> GxRun:
    """Run ``expectations`` with GE's SQL datasource over a :func:`scratch_table` (one column
    per rule) and, with ``data_docs_dir``, publish the validation as GE Data Docs there (one page
    per validation, under ``run_name``, and the site's index)."""
    import great_expectations as gx

    with _Gx.lock:
        _Gx.current = con
        try:
            context, source = _Gx.setup()
            rows = int(con.execute(f"select count(*) from {table}").fetchall()[0][0])
            unique = table.rpartition(".")[2].strip('"')
            return _run(gx, context, source, name, unique, rows, expectations, data_docs_dir,
                        run_name)  # fmt: skip
        finally:
            _Gx.current = None


def _run(
    gx: Any,
    context: Any,
    source: Any,
    name: str,
    unique: str,
    rows: int,
    expectations: Sequence[Expectation],
    data_docs_dir: Path | None,
    run_name: str | None,
) -> GxRun:
    from great_expectations.core.run_identifier import RunIdentifier

    results: dict[tuple[str, str], ExpectationOutcome] = {}
    # No row breaks a row rule of an empty table (GE's sum of no rows would be null).
    judged = [e for e in expectations if rows or e.kind != "share"]
    for e in expectations:
        if e not in judged:
            results[(e.rule, e.level)] = ExpectationOutcome(e.rule, True, 0, 0)
    asset = source.add_table_asset(unique, table_name=unique)
    batch = asset.add_batch_definition_whole_table("all")
    # The suite is named for the check (Data Docs title its page so); one validation at a time.
    suite = context.suites.add(
        gx.ExpectationSuite(
            name=name,
            expectations=[_gx_expectation(gx, e, i, rows) for i, e in enumerate(judged)],
        )
    )
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=unique, data=batch, suite=suite)
    )
    try:
        # Every expectation is an aggregate: no unexpected values or rows are fetched.
        result = validation.run(
            result_format={"result_format": "BASIC", "partial_unexpected_count": 0},
            run_id=RunIdentifier(run_name=run_name, run_time=dt.datetime.now(dt.UTC)),
        )
        for res in result.results:
            problem = _exception(res.exception_info)
            if problem:
                raise RuntimeError(f"Great Expectations could not evaluate {name}: {problem}")
            meta = res.expectation_config.meta
            observed = _number((res.result or {}).get("observed_value"))
            share = judged[meta["index"]].kind == "share"
            results[(meta["rule"], meta["level"])] = ExpectationOutcome(
                meta["rule"],
                bool(res.success),
                int(observed or 0) if share else None,
                rows if share else None,
                None if share else observed,
            )
        run = GxRun(results, rows)
        if data_docs_dir is not None:
            run.data_docs, run.page = _publish(context, result, data_docs_dir)
        return run
    finally:
        # The in-memory results store keeps this run's validations only (the index lists them):
        # a long backfill in one process neither grows nor re-renders an ever longer index.
        store = context.validation_results_store
        for key in store.list_keys():
            if data_docs_dir is None or run_name is None or key.run_id.run_name != run_name:
                store.remove_key(key)
        # Keep the in-memory stores small in a long-lived process (dagster dev, backfills).
        context.validation_definitions.delete(unique)
        context.suites.delete(name)
        source.delete_asset(unique)


class _TemplateCache:
    """Jinja bytecode of GE's Data Docs templates, kept for the process.

    GE builds new Jinja environments for every Data Docs build, so each build parsed and compiled
    its ~35 templates again (most of a build's time); the bytecode cache skips that.
    """

    store: dict[str, bytes] = {}
    installed = False

    @classmethod
    def install(cls) -> None:
        if cls.installed:
            return
        import jinja2
        from great_expectations.render.view.view import DefaultJinjaView

        class _Cache(jinja2.BytecodeCache):
            def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
                if bucket.key in cls.store:
                    bucket.bytecode_from_string(cls.store[bucket.key])

            def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
                cls.store[bucket.key] = bucket.bytecode_to_string()

        cache = _Cache()
        init = DefaultJinjaView.__init__

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            # GE's private attribute: without it (a GE upgrade), pages render uncached, only
            # slower; tests/unit/quality/test_gx_sql.py fails loudly then.
            env = getattr(self, "env", None)
            if isinstance(env, jinja2.Environment):
                env.bytecode_cache = cache

        DefaultJinjaView.__init__ = __init__  # type: ignore[method-assign]
        cls.installed = True


def _publish(context: Any, result: Any, docs_dir: Path) -> tuple[str, str | None]:
    """Render this validation's page (and the index) into ``docs_dir``; their file:// URLs."""
    _TemplateCache.install()
    docs_dir.mkdir(parents=True, exist_ok=True)
    site = _Gx.site(docs_dir.resolve())
    run_id = result.meta["run_id"]
    (key,) = [k for k in context.validation_results_store.list_keys() if k.run_id == run_id]
    index = context.build_data_docs(site_names=[site], resource_identifiers=[key])[site]
    page = None
    for entry in context.get_docs_sites_urls(resource_identifier=key, site_name=site):
        page = entry.get("site_url") or page
    prune_data_docs(docs_dir, keep_runs())
    return index, page


def keep_runs(env: Mapping[str, str] | None = None) -> int:
    """How many runs' pages to keep per suite (``TESSERA_DATA_DOCS_KEEP_RUNS``, at least 1)."""
    from tessera.settings import SettingsError, env_int

    keep = env_int(
        os.environ if env is None else env, "TESSERA_DATA_DOCS_KEEP_RUNS", DATA_DOCS_KEEP_RUNS
    )
    if keep < 1:
        raise SettingsError(f"TESSERA_DATA_DOCS_KEEP_RUNS must be at least 1, got {keep}")
    return keep


def prune_data_docs(docs_dir: Path, keep: int) -> list[Path]:
    """Remove all but the ``keep`` newest run folders of every suite under
    ``docs_dir/validations/<suite>/<run id>``; the removed folders, oldest first.

    Newest is by the folder's modification time (a run's folder is written once, when its page
    is rendered). Only folders under ``validations/`` are touched.
    """
    import shutil

    removed: list[Path] = []
    validations = docs_dir / "validations"
    if not validations.is_dir():
        return removed
    for suite in sorted(p for p in validations.iterdir() if p.is_dir()):
        runs = sorted((p for p in suite.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
        for old in runs[: max(0, len(runs) - keep)]:
            shutil.rmtree(old, ignore_errors=True)
            removed.append(old)
    return removed


# --- the narrow form: share rules over boolean flag columns --------------------------------------


@dataclass(frozen=True)
class RowExpectation:
    """At most ``max_share`` of the rows may have ``flag`` (a boolean column) true."""

    name: str
    flag: str
    max_share: float


def validate_rows(
    con: duckdb.DuckDBPyConnection,
    name: str,
    query: str,
    expectations: list[RowExpectation],
    data_docs_dir: Path | None = None,
) -> GxRun:
    """Row expectations over ``query`` (a SELECT on ``con``'s database) with GE's SQL datasource."""
    with scratch_table(con, name, query) as table:
        return validate_table(
            con,
            name,
            table,
            [Expectation(e.name, "error", "share", e.flag, e.max_share) for e in expectations],
            data_docs_dir,
        )


def count_bounds(
    low: float | None, high: float | None, per: float
) -> tuple[int | None, int | None]:
    """Whole row counts n with low <= n / per <= high (computed as the ratio is, in floats)."""
    lo = hi = None
    if low is not None:
        lo = max(0, math.ceil(low * per))
        while lo > 0 and (lo - 1) / per >= low:
            lo -= 1
        while lo / per < low:
            lo += 1
    if high is not None:
        hi = math.floor(high * per)
        while (hi + 1) / per <= high:
            hi += 1
        while hi >= 0 and hi / per > high:
            hi -= 1
    return lo, hi
