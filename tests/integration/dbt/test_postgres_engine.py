"""The dbt project on a second engine: the tiny shop built on PostgreSQL (dbt-postgres, a real
server the test starts) gives the same tables, row for row, as on DuckDB, and the same dbt
tests pass."""

from __future__ import annotations

import datetime as dt
import decimal
import math
from pathlib import Path

import duckdb
import pytest
from dbt_harness import TINY_VARS, Warehouse, failures, run_dbt

from tessera.settings import environment
from tessera.warehouse.postgres import PostgresCopyError, copy_raw_tables

#: The schemas dbt builds (the raw schema is the input, copied as it is).
BUILT_SCHEMAS = ("staging", "quarantine", "intermediate", "marts")
#: The same column type as DuckDB and PostgreSQL name it.
SAME_TYPE = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "DOUBLE": "double precision",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp without time zone",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
}
#: Sums of whole numbers: DuckDB widens them to HUGEINT, PostgreSQL to bigint or numeric (the
#: daily intermediates keep them so; the marts cast them to bigint on both).
WHOLE_SUMS = {"bigint", "numeric"}


def _canonical(value: object) -> object:
    """One spelling per value across engines: numbers as 10 significant digits (sums of
    doubles may differ in their last bits with the order of addition), timestamps naive UTC."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | decimal.Decimal):
        number = float(value)
        return None if math.isnan(number) else f"{number:.10g}"
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _rows(cursor, sql: str) -> tuple[list[str], list[tuple]]:
    cursor.execute(sql)
    names = [d[0] for d in cursor.description]
    rows = sorted((tuple(_canonical(v) for v in row) for row in cursor.fetchall()), key=repr)
    return names, rows


def _pg_kwargs(server, database: str) -> dict:
    return {
        "host": server.host,
        "port": server.port,
        "user": server.user,
        "password": server.password,
        "dbname": database,
    }


@pytest.fixture(scope="module")
def postgres_warehouse(postgres_server, tiny_warehouse: Warehouse, tmp_path_factory):
    """The tiny shop's landed tables copied to PostgreSQL and built there with dbt."""
    database = postgres_server.create_database("tessera_tiny")
    kwargs = _pg_kwargs(postgres_server, database)
    copied = copy_raw_tables(tiny_warehouse.path, kwargs)
    target_dir = tmp_path_factory.mktemp("dbt-postgres-target")
    with environment(
        TESSERA_PG_HOST=postgres_server.host,
        TESSERA_PG_PORT=str(postgres_server.port),
        TESSERA_PG_USER=postgres_server.user,
        TESSERA_PG_PASSWORD=postgres_server.password,
        TESSERA_PG_DATABASE=database,
    ):
        result = run_dbt(
            tiny_warehouse.data_dir, target_dir, "build", vars=TINY_VARS, target="postgres"
        )
    return kwargs, copied, result


@pytest.mark.timeout(300)
def test_the_same_dbt_tests_pass_on_postgres(postgres_warehouse, tiny_warehouse) -> None:
    _, copied, result = postgres_warehouse
    assert copied["orders"] > 0
    assert not failures(result)
    duck = {str(r.node.unique_id) for r in tiny_warehouse.build_result.result.results}
    pg = {str(r.node.unique_id) for r in result.result.results}
    assert pg == duck, "the two engines ran different models or tests"


@pytest.mark.timeout(300)
def test_postgres_builds_every_table_row_for_row_as_duckdb(
    postgres_warehouse, tiny_warehouse: Warehouse
) -> None:
    import psycopg2

    kwargs, _, _ = postgres_warehouse
    schemas = ", ".join(f"'{s}'" for s in BUILT_SCHEMAS)
    duck = duckdb.connect(str(tiny_warehouse.path), read_only=True)
    pg = psycopg2.connect(**kwargs)
    try:
        relations = duck.execute(
            "select table_schema, table_name from information_schema.tables "
            f"where table_schema in ({schemas}) order by 1, 2"
        ).fetchall()
        with pg.cursor() as cur:
            cur.execute(
                "select table_schema, table_name from information_schema.tables "
                f"where table_schema in ({schemas}) order by 1, 2"
            )
            assert sorted(cur.fetchall()) == sorted(relations)
        assert len(relations) > 20
        differences = []
        columns_sql = (
            "select table_schema || '.' || table_name || '.' || column_name, data_type "
            f"from information_schema.columns where table_schema in ({schemas})"
        )
        duck_types = dict(duck.execute(columns_sql).fetchall())
        with pg.cursor() as cur:
            cur.execute(columns_sql)
            pg_types = dict(cur.fetchall())
        for column, kind in sorted(duck_types.items()):
            if kind == "HUGEINT" and pg_types.get(column) in WHOLE_SUMS:
                continue
            if SAME_TYPE.get(kind, kind) != pg_types.get(column):
                differences.append(
                    f"{column}: {kind} on DuckDB, {pg_types.get(column)} on PostgreSQL"
                )
        for schema, table in relations:
            sql = f'select * from {schema}."{table}"'
            duck_names, duck_rows = _rows(duck.cursor(), sql)
            with pg.cursor() as cur:
                pg_names, pg_rows = _rows(cur, sql)
            if duck_names != pg_names:
                differences.append(f"{schema}.{table}: columns {duck_names} vs {pg_names}")
            elif duck_rows != pg_rows:
                only_duck = [r for r in duck_rows if r not in pg_rows][:3]
                only_pg = [r for r in pg_rows if r not in duck_rows][:3]
                differences.append(
                    f"{schema}.{table}: {len(duck_rows)} vs {len(pg_rows)} rows; "
                    f"only DuckDB {only_duck}; only PostgreSQL {only_pg}"
                )
        assert not differences, "\n".join(differences)
    finally:
        duck.close()
        pg.close()


def test_copying_names_a_table_that_was_not_landed(tiny_warehouse: Warehouse, tmp_path: Path):
    with pytest.raises(PostgresCopyError, match="no landed table raw.invoices"):
        copy_raw_tables(tiny_warehouse.path, {}, tables=("orders", "invoices"))
