"""Micro-segments and target-group membership per campaign date, from as-of-D features and scores."""

import datetime as dt

import dagster as dg
from dagster_duckdb import DuckDBResource

from tessera.campaigns.invariants import customers_without_segment
from tessera.campaigns.segmentation import segment_customers, unavailable_parts
from tessera.orchestration.defs.campaigns.resources import CampaignCatalog
from tessera.orchestration.defs.ml.assets import customer_scores
from tessera.orchestration.defs.partitions import WAREHOUSE_POOL, daily_partitions
from tessera.orchestration.defs.upstream import require_tables
from tessera.orchestration.defs.warehouse.assets import model_key
from tessera.reporting import markdown_table
from tessera.warehouse.duckdb_io import read, replace_dates

GROUP = "segments"
SEGMENT_MEMBERSHIP = dg.AssetKey(["segments", "segment_membership"])
MICRO_SEGMENTS = dg.AssetKey(["segments", "micro_segments"])

_INPUT_SQL = """
select f.*, {scores}
       d.is_email_valid, d.is_phone_valid,
       lower(nullif(split_part(d.email, '@', 2), '')) as email_domain
from marts.customer_features f
{scores_join}
left join marts.dim_customers d on d.customer_id = f.customer_id
where f.as_of_date = $d
"""
#: Optional sources with no data before D (int_sources_provided): their features are NULL for D.
_SOURCES_NOT_PROVIDED_SQL = """
select source_name from (
    select 'order_items' as source_name, first_order_items_date as first_date
    from intermediate.int_sources_provided
    union all
    select 'events', first_events_date from intermediate.int_sources_provided
    union all
    select 'campaign_responses', first_campaign_responses_date
    from intermediate.int_sources_provided
) as sources
where first_date is null or first_date >= $d
order by source_name
"""
_SCORES = "s.churn_probability, s.predicted_value_90d, s.clv_12m,"
_SCORES_JOIN = "left join ml.customer_scores s on s.customer_id = f.customer_id and s.as_of_date = f.as_of_date"


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
        customers = read(
            con, _INPUT_SQL.format(scores=_SCORES, scores_join=_SCORES_JOIN), {"d": day}
        )
        if customers is None:
            # Only the scores can be missing here (the other inputs were required above).
            context.log.warning("ml.customer_scores missing: segmenting without scores")
            customers = con.execute(_INPUT_SQL.format(scores="", scores_join=""), {"d": day}).df()
        not_provided = read(con, _SOURCES_NOT_PROVIDED_SQL, {"d": day})
        result = segment_customers(customers, catalog, day)
        replace_dates(
            con,
            [
                ("segments.segment_membership", result.membership),
                ("segments.micro_segments", result.micro_segments),
            ],
            day,
        )
    missing_sources = [] if not_provided is None else not_provided["source_name"].tolist()
    unavailable = unavailable_parts(catalog, missing_sources)
    if unavailable:
        # Once per run (one date per run): the catalog asks for data this shop does not have.
        context.log.warning(unavailable.message(day))
    membership, micro = result.membership, result.micro_segments
    unsegmented = customers_without_segment(customers["customer_id"].astype(str), membership)
    group_sizes = (
        membership["target_groups"].explode().value_counts().rename_axis("target_group")
    ).reset_index(name="customers")
    yield dg.MaterializeResult(
        asset_key=SEGMENT_MEMBERSHIP,
        metadata={
            "dagster/row_count": len(membership),
            "target_groups": dg.MetadataValue.md(markdown_table(group_sizes, max_rows=30)),
            "reachable": dg.MetadataValue.json(
                {c: int(membership[c].sum()) for c in membership.columns if "reachable" in c}
            ),
            "missing_attributes": dg.MetadataValue.json(result.missing_attributes),
            "unavailable_catalog_parts": dg.MetadataValue.json(unavailable.as_metadata()),
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
        passed=unsegmented == 0 and len(membership) == len(customers),
        metadata={"customers": len(customers), "without_segment": unsegmented},
    )
