"""Micro-segments and target-group membership per campaign date, from as-of-D features and scores."""

import datetime as dt

import dagster as dg
from dagster_duckdb import DuckDBResource

from tessera.campaigns import daily
from tessera.orchestration.defs.campaigns.resources import CampaignCatalog
from tessera.orchestration.defs.ml.assets import customer_scores
from tessera.orchestration.defs.partitions import WAREHOUSE_POOL, daily_partitions
from tessera.orchestration.defs.upstream import require_tables
from tessera.orchestration.defs.warehouse.assets import model_key
from tessera.reporting import markdown_table

GROUP = "segments"
SEGMENT_MEMBERSHIP = dg.AssetKey(["segments", "segment_membership"])
MICRO_SEGMENTS = dg.AssetKey(["segments", "micro_segments"])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            SEGMENT_MEMBERSHIP,
            description=(
                "One row per customer and campaign date: the micro-segment (the combination of "
                "the catalog's dimension buckets), each bucket, the target groups the customer "
                "is in, and which channels can reach them."
            ),
            deps=[
                model_key("customer_features"),
                customer_scores,
                model_key("dim_customers"),
                model_key("int_sources_provided"),
            ],
            group_name=GROUP,
            kinds={"duckdb", "python"},
        ),
        dg.AssetSpec(
            MICRO_SEGMENTS,
            description="The micro-segments of each campaign date with their bucket values and size.",
            deps=[SEGMENT_MEMBERSHIP],
            group_name=GROUP,
            kinds={"duckdb", "python"},
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "every_customer_in_a_micro_segment",
            asset=SEGMENT_MEMBERSHIP,
            blocking=True,
            description="Each customer with as-of-D features has exactly one micro-segment.",
        )
    ],
    partitions_def=daily_partitions,
    pool=WAREHOUSE_POOL,
)
def segments(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, campaign_catalog: CampaignCatalog
):
    day = dt.date.fromisoformat(context.partition_key)
    catalog = campaign_catalog.load()
    with warehouse.get_connection() as con:
        require_tables(
            con, SEGMENT_MEMBERSHIP, [model_key("customer_features"), model_key("dim_customers")]
        )
        run = daily.build_segments(con, catalog, day)
    if run.unavailable:
        # Once per run (one date per run): the catalog asks for data this shop does not have.
        context.log.warning(run.unavailable.message(day))
    membership, micro = run.result.membership, run.result.micro_segments
    yield dg.MaterializeResult(
        asset_key=SEGMENT_MEMBERSHIP,
        metadata={
            "dagster/row_count": len(membership),
            "target_groups": dg.MetadataValue.md(markdown_table(run.target_group_sizes, 30)),
            "reachable": dg.MetadataValue.json(run.reachable),
            "missing_attributes": dg.MetadataValue.json(run.result.missing_attributes),
            "unavailable_catalog_parts": dg.MetadataValue.json(run.unavailable.as_metadata()),
            "catalog": catalog.fingerprint(),
        },
    )
    yield dg.MaterializeResult(
        asset_key=MICRO_SEGMENTS,
        metadata={
            "dagster/row_count": len(micro),
            "largest": dg.MetadataValue.md(markdown_table(micro, max_rows=15)),
        },
    )
    yield dg.AssetCheckResult(
        asset_key=SEGMENT_MEMBERSHIP,
        check_name="every_customer_in_a_micro_segment",
        passed=run.without_segment == 0 and len(membership) == run.customers,
        metadata={"customers": run.customers, "without_segment": run.without_segment},
    )
