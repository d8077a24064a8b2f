"""The dbt project as assets: staging, quarantine, intermediate and marts, grouped by folder."""

import functools
import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DbtCliResource,
    DbtProject,
    dbt_assets,
    get_asset_key_for_model,
)
from dagster_duckdb import DuckDBResource

from tessera.orchestration.defs.partitions import WAREHOUSE_POOL, daily_partitions
from tessera.orchestration.defs.resources import DBT_EXECUTABLE
from tessera.reporting import markdown_table
from tessera.settings import DBT_PROJECT_DIR, environment

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def parse_dbt_project() -> None:
    """``dbt parse`` with this environment's dbt: dagster-dbt's own preparer runs the ``dbt`` on
    PATH, which a fresh checkout without the venv's bin on PATH does not have."""
    dbt = DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)
    dbt.cli(["parse", "--quiet"], target_path=dbt_project.target_path).wait()


# `dagster dev` re-parses the project on start (as prepare_if_dev would); a fresh clone without
# `make` parses once so the definitions can load at all; `make` and the tests parse themselves.
if dbt_project.preparer.using_dagster_dev() or not dbt_project.manifest_path.exists():
    parse_dbt_project()

#: dbt models that hold one slice per campaign date (built with `--vars {as_of: D}`).
DAILY_MODELS = "customer_features"


class TesseraDbtTranslator(DagsterDbtTranslator):
    """Models, seeds, snapshots and sources are keyed by the relation they are: [schema, name]
    (`marts.customer_features` is ["marts", "customer_features"]); models are grouped by their
    folder (staging, quarantine, intermediate, marts)."""

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        kind = props["resource_type"]
        if kind in ("model", "seed", "snapshot"):
            key = dg.AssetKey([props["schema"], props.get("alias") or props["name"]])
        elif kind == "source":
            key = dg.AssetKey([props["schema"], props.get("identifier") or props["name"]])
        else:
            return spec
        fqn = props.get("fqn", [])
        group = fqn[1] if kind == "model" and len(fqn) > 2 else spec.group_name
        return spec.replace_attributes(key=key, group_name=group)


translator = TesseraDbtTranslator()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    exclude=DAILY_MODELS,
    dagster_dbt_translator=translator,
    pool=WAREHOUSE_POOL,
    name="warehouse_models",
)
def warehouse_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: DuckDBResource
):
    """Build and test every model that holds the whole history (views and tables)."""
    events, failure = run_dbt(dbt, context)
    with warehouse.get_connection() as con:
        for event in events:
            if isinstance(event, dg.Output):
                rows = _relation_rows(con, event.metadata.get("unique_id"))
                if rows is not None:
                    event = event.with_metadata({**event.metadata, "dagster/row_count": rows})
            yield event
    if failure is not None:
        raise failure


def run_dbt(
    dbt: DbtCliResource, context: dg.AssetExecutionContext
) -> tuple[list, Exception | None]:
    """``dbt build`` for the step: its events, and the error that ended it (None if it passed).

    The events are collected before anything reads the warehouse (a dbt subprocess holds the
    DuckDB write lock until it exits), and they are kept when dbt fails, so the tests that did
    run still show their results in the UI beside the failure.
    """
    events: list = []
    try:
        for event in dbt.cli(["build"], context=context).stream():
            events.append(event)
    except Exception as exc:  # noqa: BLE001 - re-raised by the caller after the events
        return events, exc
    return events, None


def _relation_rows(con, unique_id: dg.MetadataValue | str | None) -> int | None:
    """Rows of a model's relation, from the manifest's schema and alias (None if unknown)."""
    uid = getattr(unique_id, "value", unique_id)
    node = dbt_project_nodes().get(uid or "")
    # Views would be re-computed just to be counted: only tables and incrementals get a count.
    if not node or node.get("config", {}).get("materialized") in ("ephemeral", "view"):
        return None
    relation = f'"{node["schema"]}"."{node.get("alias") or node["name"]}"'
    try:
        return int(con.execute(f"select count(*) from {relation}").fetchall()[0][0])
    except Exception:  # noqa: BLE001 - a missing relation only loses a metadata entry
        return None


@functools.cache
def dbt_project_nodes() -> dict[str, dict[str, Any]]:
    return json.loads(dbt_project.manifest_path.read_text())["nodes"]


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=DAILY_MODELS,
    dagster_dbt_translator=translator,
    partitions_def=daily_partitions,
    pool=WAREHOUSE_POOL,
    name="daily_feature_models",
)
def daily_feature_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: DuckDBResource
):
    """Build and test the point-in-time features for campaign date D (data before D 00:00)."""
    as_of = context.partition_key
    # The date travels as an environment variable rather than --vars: changed vars make dbt
    # re-parse the whole project on every date.
    with environment(TESSERA_AS_OF=as_of):
        events, failure = run_dbt(dbt, context)
    if failure is None:
        with warehouse.get_connection() as con:
            metadata = feature_partition_metadata(con, as_of)
    features = daily_feature_models.get_output_name_for_asset_key(model_key(DAILY_MODELS))
    for event in events:
        if failure is None and isinstance(event, dg.Output) and event.output_name == features:
            yield event.with_metadata({**event.metadata, **metadata})
        else:
            yield event
    if failure is not None:
        raise failure


def feature_partition_metadata(con, as_of: str) -> dict[str, dg.MetadataValue]:
    """Row count, a few headline shares and a preview of one campaign date's features."""
    stats = con.execute(
        """
        select count(*),
               avg(case when orders_90d > 0 then 1.0 else 0.0 end),
               avg(case when events_30d > 0 then 1.0 else 0.0 end),
               sum(case when is_cart_abandoned_24h then 1 else 0 end)
        from marts.customer_features where as_of_date = cast(? as date)
        """,
        [as_of],
    ).fetchall()[0]
    preview = con.execute(
        """
        select customer_id, tenure_days, orders_365d, revenue_365d, days_since_last_order,
               top_category, events_30d, is_cart_abandoned_24h
        from marts.customer_features where as_of_date = cast(? as date)
        order by revenue_365d desc limit 10
        """,
        [as_of],
    ).df()
    return {
        "dagster/row_count": dg.MetadataValue.int(int(stats[0])),
        "as_of": dg.MetadataValue.text(as_of),
        "share_bought_last_90d": dg.MetadataValue.float(float(stats[1] or 0.0)),
        "share_active_last_30d": dg.MetadataValue.float(float(stats[2] or 0.0)),
        "carts_abandoned_last_24h": dg.MetadataValue.int(int(stats[3] or 0)),
        "preview_top_spenders": dg.MetadataValue.md(markdown_table(preview)),
    }


def model_key(model: str) -> dg.AssetKey:
    """The asset key of a dbt model, as the translator made it (for the deps of Python assets)."""
    assets_def = daily_feature_models if model == DAILY_MODELS else warehouse_models
    return get_asset_key_for_model([assets_def], model)
