"""A Python asset's upstream tables must exist: a missing one is an error naming it and its asset."""

from collections.abc import Iterable

import dagster as dg
import duckdb


class MissingUpstreamTableError(Exception):
    """An asset ran before an upstream asset had built the table it reads."""


def table_of(key: dg.AssetKey) -> str:
    """The warehouse table an asset key stands for: ["marts", "dim_customers"] -> marts.dim_customers."""
    return ".".join(key.path)


def require_tables(
    con: duckdb.DuckDBPyConnection, needed_by: dg.AssetKey, upstream: Iterable[dg.AssetKey]
) -> None:
    """Raise, naming every table of ``upstream`` that does not exist and the asset that builds it.

    Asset keys are [schema, table] (docs/architecture.md), so the key says which table to look for.
    """
    existing = {
        (schema, name)
        for schema, name in con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "union all select schema_name, view_name from duckdb_views()"
        ).fetchall()
    }
    missing = [key for key in upstream if tuple(key.path) not in existing]
    if missing:
        tables = ", ".join(
            f"{table_of(k)} (built by the asset {k.to_user_string()})" for k in missing
        )
        raise MissingUpstreamTableError(
            f"{needed_by.to_user_string()} reads {tables}, which does not exist yet: materialize "
            f"{'it' if len(missing) == 1 else 'them'} first (or run the whole daily_pipeline job "
            "for this date)."
        )
