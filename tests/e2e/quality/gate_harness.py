"""Helpers for the bad-input tests: run the gated subgraph, read failures, fingerprint the warehouse."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb

from tessera.orchestration.defs.quality.assets import quarantine_summary
from tessera.orchestration.defs.quality.checks import (
    customer_features_contract,
    mart_contract_checks,
    raw_contract_checks,
)
from tessera.orchestration.defs.resources import build_resources
from tessera.orchestration.defs.sources.assets import raw_tables
from tessera.orchestration.defs.warehouse.assets import daily_feature_models, warehouse_models

#: Campaign date D of the small shop (its data ends at D 00:00).
CAMPAIGN_DATE = "2026-06-01"
ASSETS = [
    raw_tables,
    warehouse_models,
    daily_feature_models,
    quarantine_summary,
    raw_contract_checks,
    mart_contract_checks,
    customer_features_contract,
]
#: Landing, gates, every warehouse model and the features of D. Not a smaller subset: dbt's
#: eager test selection would pull in relationship tests of models a subset leaves unbuilt.
GATED = dg.AssetSelection.all()
RAW = dg.AssetSelection.assets(*(["raw", t] for t in (
    "customers", "orders", "order_items", "events", "campaign_responses")))  # fmt: skip

#: Built layers a blocked or failed run must leave exactly as they were.
BUILT_TABLES = (
    "marts.dim_customers", "marts.fct_orders", "marts.fct_order_items",
    "marts.customer_features", "quarantine.quarantine_customers", "quarantine.quarantine_orders",
    "quarantine.quarantine_order_items", "quarantine.quarantine_events",
    "quarantine.quarantine_campaign_responses", "staging.stg_shop__customers",
    "staging.stg_shop__orders", "staging.stg_shop__order_items", "staging.stg_shop__events",
)  # fmt: skip
RAW_TABLES = tuple(f"raw.{t}" for t in ("customers", "orders", "order_items", "events",
                                        "campaign_responses"))  # fmt: skip


@dataclass
class Shop:
    root: Path
    baseline: dict[str, tuple] = field(default_factory=dict)

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    def restore(self, table: str) -> None:
        """Put one landing table back exactly as generated (the data is fixed)."""
        shutil.rmtree(self.landing / table, ignore_errors=True)
        shutil.copytree(self.root / "pristine" / table, self.landing / table)

    def query(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.execute(sql).fetchall()


def run_gated(
    shop: Shop, selection: dg.AssetSelection = GATED, partition_key: str | None = CAMPAIGN_DATE
) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        ASSETS,
        selection=selection,
        partition_key=partition_key,
        resources=build_resources(data_dir=shop.root),
        raise_on_error=False,
    )
    return result


def fingerprints(
    shop: Shop, tables: tuple[str, ...] = BUILT_TABLES + RAW_TABLES
) -> dict[str, tuple]:
    """Row count and an order-independent hash of every row, per table.

    Floating-point columns are rounded first: DuckDB's parallel sums may differ in the last bits
    from one build to the next, which is not a difference in the data.
    """
    out = {}
    with duckdb.connect(str(shop.warehouse), read_only=True) as con:
        for table in tables:
            schema, name = table.split(".")
            cols = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, name],
            ).fetchall()
            exprs = [
                f'round("{c}", 6)' if t in ("DOUBLE", "FLOAT", "REAL") else f'"{c}"'
                for c, t in cols
            ]
            out[table] = tuple(
                con.execute(
                    f"select count(*), sum(hash({', '.join(exprs)}))::varchar from {table}"
                ).fetchall()[0]
            )
    return out


def step_error(result: dg.ExecuteInProcessResult, step: str) -> str:
    """The failure message of a step, with every cause (what the UI shows)."""
    for event in result.all_events:
        if event.is_step_failure and event.step_key == step:
            error, parts = event.step_failure_data.error, []
            while error is not None:
                parts.append(error.message)
                error = error.cause
            return "\n".join(parts)
    raise AssertionError(f"step {step} did not fail")


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def check(result: dg.ExecuteInProcessResult, asset: str, name: str = "contract"):
    return next(
        e for e in result.get_asset_check_evaluations()
        if e.asset_key.to_user_string() == asset and e.check_name == name
    )  # fmt: skip


def accounting_is_balanced(shop: Shop) -> dict[str, tuple[int, int, int]]:
    """Per table (landed, staged, quarantined); asserts landed = staged + quarantined."""
    out = {}
    for table in ("customers", "orders", "order_items", "events", "campaign_responses"):
        (landed, staged, held), = shop.query(
            f"select (select count(*) from raw.{table}), "
            f"(select count(*) from staging.stg_shop__{table}), "
            f"(select count(*) from quarantine.quarantine_{table} where is_blocking)"
        )  # fmt: skip
        assert landed == staged + held, (table, landed, staged, held)
        out[table] = (landed, staged, held)
    return out
