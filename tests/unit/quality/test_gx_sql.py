"""Great Expectations' SQL datasource judges rows in DuckDB and publishes Data Docs."""

from __future__ import annotations

import duckdb
import pytest

from tessera.quality.gx_sql import RowExpectation, validate_rows


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema raw")
    con.execute(
        "create table raw.orders as select i as row, i % 50 = 0 as rule__bad, false as rule__ok "
        "from range(1000) t(i)"
    )
    yield con
    con.close()


def test_row_expectations_run_in_duckdb_with_their_share(con, tmp_path) -> None:
    run = validate_rows(
        con,
        "raw_orders",
        "select * from raw.orders",
        [
            RowExpectation("bad_within_5_percent", "rule__bad", 0.05),
            RowExpectation("bad_within_1_percent", "rule__bad", 0.01),
            RowExpectation("ok", "rule__ok", 0.0),
        ],
        data_docs_dir=tmp_path / "data_docs",
    )
    assert run.outcomes["bad_within_5_percent"].success
    assert not run.outcomes["bad_within_1_percent"].success
    assert run.outcomes["bad_within_1_percent"].unexpected_count == 20
    assert run.outcomes["ok"].success and run.outcomes["ok"].element_count == 1000
    index = tmp_path / "data_docs" / "index.html"
    assert run.data_docs == index.as_uri() and index.is_file()
    assert "raw_orders" in index.read_text(encoding="utf-8")


def test_a_missing_column_is_an_error_naming_the_suite(con) -> None:
    with pytest.raises(RuntimeError, match="could not evaluate raw_orders"):
        validate_rows(
            con, "raw_orders", "select * from raw.orders", [RowExpectation("x", "rule__nope", 0)]
        )


def test_data_docs_templates_get_the_process_bytecode_cache() -> None:
    """Contract with GE's private DefaultJinjaView.env: an upgrade that renames it makes Data
    Docs slow again (about 3x), and this test says so."""
    import jinja2
    from great_expectations.render.view.view import DefaultJinjaView

    from tessera.quality.gx_sql import _TemplateCache

    _TemplateCache.install()
    view = DefaultJinjaView(custom_styles_directory=None, custom_views_directory=None)
    assert isinstance(view.env, jinja2.Environment)
    assert isinstance(view.env.bytecode_cache, jinja2.BytecodeCache)
