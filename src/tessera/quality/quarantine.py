"""The quarantine ledger: counts per table and reason, and the row accounting raw = staged + quarantined.

dbt writes ``quarantine.quarantine_<table>`` (reason, is_blocking, reasons, the landed columns,
``_source_file``, ``_source_row``) and keeps blocking rows out of ``staging.stg_shop__<table>``.
This module only reads those tables, so nothing a user sent can vanish without being counted.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from tessera.warehouse.landing import CONTRACT, UNMODELLED_TABLES

TABLES: tuple[str, ...] = tuple(t for t in CONTRACT if t not in UNMODELLED_TABLES)


def raw_relation(table: str) -> str:
    return f"raw.{table}"


def staged_relation(table: str) -> str:
    return f"staging.stg_shop__{table}"


def quarantine_relation(table: str) -> str:
    return f"quarantine.quarantine_{table}"


def _exists(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    schema, name = relation.split(".")
    return bool(
        con.execute(
            "select 1 from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchall()
    )


def _count(con: duckdb.DuckDBPyConnection, relation: str, where: str = "") -> int | None:
    if not _exists(con, relation):
        return None
    return int(con.execute(f"select count(*) from {relation} {where}").fetchall()[0][0])


def row_accounting(
    con: duckdb.DuckDBPyConnection, tables: tuple[str, ...] = TABLES
) -> pd.DataFrame:
    """Per table: landed rows, staged rows, rows held back (blocking) and rows only flagged.

    ``balanced`` is True when landed = staged + held back, i.e. no row was lost or doubled.
    """
    rows = []
    for table in tables:
        landed = _count(con, raw_relation(table))
        staged = _count(con, staged_relation(table))
        held = _count(con, quarantine_relation(table), "where is_blocking")
        flagged = _count(con, quarantine_relation(table), "where not is_blocking")
        balanced = None not in (landed, staged, held) and landed == staged + held
        rows.append({
            "table": table,
            "landed_rows": landed,
            "staged_rows": staged,
            "quarantined_rows": held,
            "flagged_rows": flagged,
            "balanced": balanced,
        })  # fmt: skip
    return pd.DataFrame(rows)


def quarantine_counts(
    con: duckdb.DuckDBPyConnection, tables: tuple[str, ...] = TABLES
) -> pd.DataFrame:
    """Quarantined rows per table and primary reason (blocking = held out of staging)."""
    parts = [
        f"select '{t}' as \"table\", reason, is_blocking, count(*) as rows "
        f"from {quarantine_relation(t)} group by all"
        for t in tables
        if _exists(con, quarantine_relation(t))
    ]
    if not parts:
        return pd.DataFrame(columns=["table", "reason", "is_blocking", "rows"])
    sql = " union all ".join(parts) + ' order by "table", rows desc, reason'
    return con.execute(sql).df()


def quarantine_examples(con: duckdb.DuckDBPyConnection, table: str, limit: int = 5) -> pd.DataFrame:
    """A few quarantined rows of one table, with their reason and where they came from."""
    relation = quarantine_relation(table)
    if not _exists(con, relation):
        return pd.DataFrame()
    return con.execute(
        f"select * from {relation} order by is_blocking desc, _source_file, _source_row "
        f"limit {int(limit)}"
    ).df()
