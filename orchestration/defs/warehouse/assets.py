"""The dbt project as assets: staging, quarantine, intermediate and marts, grouped by folder."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from orchestration.defs.partitions import WAREHOUSE_POOL, daily_partitions
from orchestration.settings import DBT_PROJECT_DIR

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# `dagster dev` re-parses the project on start; `make` and the tests run `dbt parse` themselves.
dbt_project.prepare_if_dev()
if not dbt_project.manifest_path.exists():
    # A fresh clone without `make`: parse once so the definitions can load at all.
    dbt_project.preparer.prepare(dbt_project)

#: dbt models that hold one slice per campaign date (built with `--vars {as_of: D}`).
DAILY_MODELS = "customer_features"


class TesseraDbtTranslator(DagsterDbtTranslator):
    """Models are keyed by their name and grouped by their folder (staging, marts, ...)."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return dg.AssetKey(dbt_resource_props["name"])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props["resource_type"] == "model" and len(fqn) > 2:
            return fqn[1]
        return super().get_group_name(dbt_resource_props)


translator = TesseraDbtTranslator()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    exclude=DAILY_MODELS,
    dagster_dbt_translator=translator,
    pool=WAREHOUSE_POOL,
    name="warehouse_models",
)
def warehouse_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """Build and test every model that holds the whole history (views and tables)."""
    yield from dbt.cli(["build"], context=context).stream().fetch_row_counts()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=DAILY_MODELS,
    dagster_dbt_translator=translator,
    partitions_def=daily_partitions,
    pool=WAREHOUSE_POOL,
    name="daily_feature_models",
)
def daily_feature_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """Build and test the point-in-time features for campaign date D (data before D 00:00)."""
    as_of = context.partition_key
    args = ["build", "--vars", json.dumps({"as_of": as_of})]
    yield from dbt.cli(args, context=context).stream()
