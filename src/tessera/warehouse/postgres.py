"""The landed tables in PostgreSQL, for the dbt project's PostgreSQL target.

Tessera lands files into DuckDB (``raw.<table>``, every shop column as text). To build the
same warehouse on PostgreSQL (``dbt build --target postgres``), :func:`copy_raw_tables` copies
those tables into a ``raw`` schema there, all tables in one transaction, NULLs kept NULL and
empty texts kept empty (the quarantine rules tell the two apart).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

#: DuckDB column types of the landed tables and their PostgreSQL spelling.
PG_TYPES = {"VARCHAR": "text", "BIGINT": "bigint", "INTEGER": "integer", "TIMESTAMP": "timestamp"}
#: How COPY's text format spells NULL (a literal backslash in a text is escaped, so a landed
#: text "\\N" stays a text).
_NULL = "\\N"


class PostgresCopyError(ValueError):
    """A landed table cannot be copied to PostgreSQL (its column type or content)."""


def copy_raw_tables(
    duckdb_path: Path,
    connect_kwargs: Mapping[str, Any],
    tables: tuple[str, ...] | None = None,
) -> dict[str, int]:
    """Replace PostgreSQL's ``raw.<table>`` by DuckDB's for each landed table; rows per table.

    All or nothing: the tables are written in one PostgreSQL transaction.
    """
    import psycopg2

    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        names = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables where table_schema = 'raw' "
                "order by table_name"
            ).fetchall()
        ]
        if tables is not None:
            missing = sorted(set(tables) - set(names))
            if missing:
                raise PostgresCopyError(f"{duckdb_path}: no landed table raw.{missing[0]}")
            names = [n for n in names if n in tables]
        frames = {name: _table(con, name) for name in names}

    counts: dict[str, int] = {}
    conn = psycopg2.connect(**dict(connect_kwargs))
    try:
        with conn, conn.cursor() as cur:
            cur.execute("create schema if not exists raw")
            for name, (columns, rows) in frames.items():
                ddl = ", ".join(f'"{c}" {t}' for c, t in columns)
                cur.execute(f'drop table if exists raw."{name}"')
                cur.execute(f'create table raw."{name}" ({ddl})')
                cur.copy_expert(
                    f"copy raw.\"{name}\" from stdin with (format text, null '{_NULL}')",
                    _copy_stream(rows),
                )
                counts[name] = len(rows)
    finally:
        conn.close()
    return counts


def _table(con: duckdb.DuckDBPyConnection, name: str) -> tuple[list[tuple[str, str]], list]:
    described = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'raw' and table_name = ? order by ordinal_position",
        [name],
    ).fetchall()
    columns = []
    for column, kind in described:
        if kind not in PG_TYPES:
            raise PostgresCopyError(f"raw.{name}.{column}: no PostgreSQL type for {kind}")
        columns.append((column, PG_TYPES[kind]))
    rows = con.execute(f'select * from raw."{name}"').fetchall()
    return columns, rows


def _copy_stream(rows: list) -> io.StringIO:
    """Rows in COPY's text format: tab-separated, backslash escapes, ``\\N`` for NULL."""
    out = io.StringIO()
    for row in rows:
        out.write("\t".join(_NULL if v is None else _escape(str(v)) for v in row))
        out.write("\n")
    out.seek(0)
    return out


def _escape(text: str) -> str:
    if "\x00" in text:
        raise PostgresCopyError(
            f"a landed text holds a NUL byte, which PostgreSQL refuses: {text!r}"
        )
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
