"""Great Expectations over the warehouse itself: its SQL datasource on a DuckDB connection, and Data Docs.

GE runs each expectation as SQL through SQLAlchemy (duckdb-engine), on a duplicate of the caller's
DuckDB connection, so it reads the same database (the one writer of the warehouse file, or an
in-memory one in tests) without opening the file a second time. GE is imported lazily.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb


class _BufferedCursor:
    """A DB-API cursor that fetches its result at once.

    duckdb-engine's cursors share their connection, and GE fetches a result after handing the
    connection back (which rolls it back): DuckDB would have dropped the pending result by then.
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


def _creator(con: duckdb.DuckDBPyConnection) -> Any:
    import duckdb_engine

    class _Connection(duckdb_engine.ConnectionWrapper):
        def cursor(self) -> Any:
            return _BufferedCursor(super().cursor())

    return lambda: _Connection(con.cursor())


@dataclass(frozen=True)
class RowExpectation:
    """At most ``max_share`` of the rows may have ``flag`` (a boolean column) true."""

    name: str
    flag: str
    max_share: float


@dataclass(frozen=True)
class ExpectationOutcome:
    name: str
    success: bool
    unexpected_count: int | None
    element_count: int | None


@dataclass
class GxRun:
    outcomes: dict[str, ExpectationOutcome]
    #: file:// URL of the Data Docs index, when a directory was given.
    data_docs: str | None = None


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


def validate_rows(
    con: duckdb.DuckDBPyConnection,
    name: str,
    query: str,
    expectations: list[RowExpectation],
    data_docs_dir: Path | None = None,
) -> GxRun:
    """Run row expectations with GE's SQL datasource over ``query`` (a SELECT on ``con``'s
    database) and, with ``data_docs_dir``, publish the validation as GE Data Docs there."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_sql(
        "tessera_warehouse", connection_string="duckdb:///:memory:",
        kwargs={"creator": _creator(con)},
    )  # fmt: skip
    batch = source.add_query_asset(name, query=query).add_batch_definition_whole_table("all")
    suite = context.suites.add(
        gx.ExpectationSuite(
            name=name,
            expectations=[
                gx.expectations.ExpectColumnValuesToBeInSet(
                    column=e.flag,
                    value_set=[False],
                    mostly=1.0 - e.max_share,
                    meta={"rule": e.name},
                )  # fmt: skip
                for e in expectations
            ],
        )
    )
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch, suite=suite)
    )
    result = validation.run(result_format="SUMMARY")
    outcomes = {}
    for res in result.results:
        problem = _exception(res.exception_info)
        if problem:
            raise RuntimeError(f"Great Expectations could not evaluate {name}: {problem}")
        rule = res.expectation_config.meta["rule"]
        outcomes[rule] = ExpectationOutcome(
            rule,
            bool(res.success),
            res.result.get("unexpected_count"),
            res.result.get("element_count"),
        )
    docs = None
    if data_docs_dir is not None:
        data_docs_dir.mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(
            "tessera",
            {
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(data_docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        docs = context.build_data_docs(site_names=["tessera"])["tessera"]
    return GxRun(outcomes, docs)
