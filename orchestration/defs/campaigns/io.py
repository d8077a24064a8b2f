"""Warehouse reads and per-date writes shared by the segments and campaigns assets."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pyarrow as pa


def read(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None
) -> pd.DataFrame | None:
    """Run a read; None when the table does not exist yet (first dates, partial setups)."""
    try:
        return con.execute(sql, params or {}).df()
    except duckdb.CatalogException:
        return None


def replace_dates(
    con: duckdb.DuckDBPyConnection,
    writes: list[tuple[str, pd.DataFrame | pa.Table]],
    day: dt.date,
    date_column: str = "as_of_date",
) -> None:
    """Delete-then-insert ``day`` in every table of ``writes`` in one transaction."""
    con.execute("begin")
    try:
        for i, (table, frame) in enumerate(writes):
            name = f"_frame_{i}"
            con.register(name, frame)
            con.execute(f"create schema if not exists {table.split('.')[0]}")
            con.execute(f"create table if not exists {table} as select * from {name} limit 0")
            con.execute(f"delete from {table} where {date_column} = $d", {"d": day})
            con.execute(f"insert into {table} by name select * from {name}")
            con.unregister(name)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
