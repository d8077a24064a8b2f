"""Writing one campaign date's rows into warehouse tables: delete-then-insert, all or nothing."""

import datetime as dt

import duckdb
import pandas as pd
import pyarrow as pa


def _table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    return bool(
        con.execute(
            "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?",
            [schema, name],
        ).fetchall()[0][0]
    )


def _is_empty(frame: pd.DataFrame | pa.Table) -> bool:
    return frame.num_rows == 0 if isinstance(frame, pa.Table) else frame.empty


def replace_dates(
    con: duckdb.DuckDBPyConnection,
    writes: list[tuple[str, pd.DataFrame | pa.Table]],
    day: dt.date,
    date_column: str = "as_of_date",
) -> None:
    """Replace ``day`` in every `schema.table` of ``writes`` in one transaction.

    A rerun of a date replaces its rows whole, and a failure leaves every table as it was.
    Tables are created from the first frame that has rows: an empty pandas frame carries no
    column types (DuckDB would type its columns NULL and refuse every later insert).
    """
    con.execute("begin")
    try:
        for i, (table, frame) in enumerate(writes):
            exists = _table_exists(con, table)
            if not exists and _is_empty(frame):
                continue
            name = f"_frame_{i}"
            con.register(name, frame)
            try:
                if not exists:
                    con.execute(f"create schema if not exists {table.split('.')[0]}")
                    con.execute(f"create table {table} as select * from {name} limit 0")
                con.execute(f"delete from {table} where {date_column} = $d", {"d": day})
                con.execute(f"insert into {table} by name select * from {name}")
            finally:
                con.unregister(name)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise


def read(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None
) -> pd.DataFrame | None:
    """Run a read; None when an upstream table does not exist yet (first dates, partial setups)."""
    try:
        return con.execute(sql, params or {}).df()
    except (duckdb.CatalogException, duckdb.InvalidInputException):
        # InvalidInput: DuckDB tried a Python variable of that name (a replacement scan).
        return None
