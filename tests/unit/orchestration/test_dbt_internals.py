"""Contract test of the private dagster-dbt / dbt internals the in-process dbt runner uses.

An upgrade of dagster-dbt, dbt-core or dbt-duckdb that removes or changes one of them fails
here, naming the symbol and the installed versions, before any materialization meets it.
"""

from __future__ import annotations

import importlib.metadata

import pytest
from dagster_dbt import dbt_assets

from tessera.orchestration import dbt_internals
from tessera.orchestration.dbt_internals import (
    EXCLUDE_KEY,
    SELECT_KEY,
    DbtInternalsChanged,
    Internal,
    problems,
    resolve,
)
from tessera.settings import DBT_PROJECT_DIR


def test_every_internal_the_runner_uses_exists_and_takes_the_parameters_passed():
    found = problems()
    assert found == [], "\n".join(found)


def test_a_removed_symbol_is_reported_with_its_name_and_the_installed_versions():
    gone = Internal("dagster_dbt.asset_utils", "get_manifest_and_translator_from_dbt_assets_v2")
    [message] = problems([gone])
    assert "dagster_dbt.asset_utils.get_manifest_and_translator_from_dbt_assets_v2" in message
    assert f"dagster-dbt {importlib.metadata.version('dagster-dbt')}" in message
    assert f"dbt-duckdb {importlib.metadata.version('dbt-duckdb')}" in message
    with pytest.raises(DbtInternalsChanged, match="asset_utils"):
        resolve(gone)


def test_a_parameter_no_longer_taken_is_reported():
    changed = Internal("dbt_common.events.functions", "msg_to_dict", ("msg", "as_json"))
    [message] = problems([changed])
    assert "msg_to_dict: no parameter as_json" in message and "dbt-common" in message


def test_the_op_tags_read_for_a_subset_are_the_ones_dbt_assets_writes():
    @dbt_assets(
        manifest=DBT_PROJECT_DIR / "target" / "manifest.json",
        select="fct_orders",
        exclude="dim_customers",
        name="contract_probe",
    )
    def probe(context): ...

    tags = probe.op.tags
    assert tags[resolve(SELECT_KEY)] == "fct_orders"
    assert tags[resolve(EXCLUDE_KEY)] == "dim_customers"


def test_release_duckdb_closes_dbt_duckdbs_process_wide_database(monkeypatch):
    manager = resolve(Internal("dbt.adapters.duckdb.connections", "DuckDBConnectionManager"))
    closed = []

    class Env:
        def close(self):
            closed.append("env")

    monkeypatch.setattr(manager, "_ENV", Env())
    monkeypatch.setattr(manager, "close_all_connections", lambda: closed.append("connections"))
    dbt_internals.release_duckdb()
    assert closed == ["env", "connections"]
