"""Writing one campaign date's rows into warehouse tables: delete-then-insert, all or nothing."""

import datetime as dt
import logging

import duckdb
import pandas as pd
import pyarrow as pa

log = logging.getLogger(__name__)


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether ``schema.name`` is a table of the connection's database (views do not count)."""
    schema, name = table.split(".")
    return bool(
        con.execute(
            "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?",
            [schema, name],
        ).fetchall()[0][0]
    )


def _is_empty(frame: pd.DataFrame | pa.Table) -> bool:
    return frame.num_rows == 0 if isinstance(frame, pa.Table) else frame.empty


def _untyped_columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    """Columns DuckDB can only type NULL: object columns of a pandas frame without rows."""
    return [
        name
        for name, kind, *_ in con.execute(f"describe select * from {relation}").fetchall()
        if kind == '"NULL"'
    ]


def empty_frame(schema: pa.Schema) -> pd.DataFrame:
    """A frame without rows whose columns keep ``schema``'s types (Arrow-backed), so that
    :func:`replace_dates` creates its table typed on a date that had nothing to write."""
    return schema.empty_table().to_pandas(types_mapper=pd.ArrowDtype)


def replace_dates(
    con: duckdb.DuckDBPyConnection,
    writes: list[tuple[str, pd.DataFrame | pa.Table]],
    day: dt.date,
    date_column: str = "as_of_date",
    appends: list[tuple[str, pd.DataFrame | pa.Table]] | None = None,
) -> None:
    """Replace ``day`` in every `schema.table` of ``writes`` in one transaction.

    ``appends`` are added to their tables in the same transaction without deleting anything
    (logs that keep every entry of a date, written together with the state they record).

    A rerun of a date replaces its rows whole, and a failure leaves every table as it was.
    A missing table is created with the frame's schema, also when the frame has no rows, so
    readers of a date without rows find an empty table rather than none. An Arrow table (or a
    pandas frame with typed columns) always carries its schema; an empty pandas frame with
    object columns does not (DuckDB would type them NULL and refuse every later insert), so
    such a table is left to the first date with rows, with a warning naming it.
    """
    registered: list[str] = []
    con.execute("begin")
    try:
        appended = list(appends or [])
        for i, (table, frame) in enumerate([*writes, *appended]):
            exists = table_exists(con, table)
            name = f"_frame_{i}"
            con.register(name, frame)
            registered.append(name)
            if not exists and _is_empty(frame):
                untyped = _untyped_columns(con, name)
                if untyped:
                    log.warning(
                        "%s not created: its frame for %s has no rows and no types for %s"
                        " (pass an Arrow table or typed columns)",
                        table,
                        day,
                        ", ".join(untyped),
                    )
                    continue
            if not exists:
                con.execute(f"create schema if not exists {table.split('.')[0]}")
                con.execute(f"create table {table} as select * from {name} limit 0")
            if i < len(writes):
                con.execute(f"delete from {table} where {date_column} = $d", {"d": day})
            con.execute(f"insert into {table} by name select * from {name}")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        # after the transaction: an aborted one refuses even unregister, which would hide the
        # statement that failed
        for name in registered:
            con.unregister(name)


def read(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None
) -> pd.DataFrame | None:
    """Run a read; None when an upstream table does not exist yet (first dates, partial setups)."""
    try:
        return con.execute(sql, params or {}).df()
    except (duckdb.CatalogException, duckdb.InvalidInputException):
        # InvalidInput: DuckDB tried a Python variable of that name (a replacement scan).
        return None


def local_date_sql(utc_timestamp: str, timezone: str) -> str:
    """SQL for the calendar day, in ``timezone`` (an SQL expression: a literal or a parameter),
    of ``utc_timestamp``, a naive UTC TIMESTAMP expression (how the warehouse and the ledgers
    store time). The shop's days (TESSERA_TIMEZONE) are what caps and locks count in."""
    return f"cast(timezone({timezone}, timezone('UTC', {utc_timestamp})) as date)"
