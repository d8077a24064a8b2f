"""The daily campaign matrix in Dagster: assignments, exclusions, matrix grid and forward plan."""

import datetime as dt

import dagster as dg
from dagster_duckdb import DuckDBResource

from tessera.campaigns import daily
from tessera.orchestration.defs.campaigns.resources import CampaignCatalog
from tessera.orchestration.defs.partitions import WAREHOUSE_POOL, daily_partitions
from tessera.orchestration.defs.segments.assets import MICRO_SEGMENTS, SEGMENT_MEMBERSHIP
from tessera.orchestration.defs.sources.assets import RAW_ASSET_KEYS
from tessera.orchestration.defs.upstream import require_tables
from tessera.reporting import markdown_table

GROUP = "campaigns"
ASSIGNMENTS = dg.AssetKey(["campaigns", "campaign_assignments"])
EXCLUSIONS = dg.AssetKey(["campaigns", "exclusions"])
MATRIX = dg.AssetKey(["campaigns", "campaign_matrix"])
PLAN = dg.AssetKey(["campaigns", "campaign_plan"])
PLAN_VS_ACTUAL = dg.AssetKey(["campaigns", "plan_vs_actual"])
GLOBAL_CONTROL = dg.AssetKey(["campaigns", "global_control"])


class MatrixConfig(dg.Config):
    """Run flags of the matrix date."""

    allow_gap: bool = False
    """Build D although D-1 was never built (locks set on missing dates are then unknown)."""


class PlanConfig(dg.Config):
    days: int = 14
    """How many days after D the forward plan projects."""


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ASSIGNMENTS,
            description=(
                "Who gets which campaign on date D, on which channel, and who is in the control "
                "group (assigned and recorded, not contacted). One campaign per customer per "
                "date; `locked_until` (exclusive) ends the duration lock. Activations send the "
                "non-control rows. Messages other systems sent (`raw.external_contacts`) count "
                "against the frequency caps."
            ),
            deps=[SEGMENT_MEMBERSHIP, RAW_ASSET_KEYS["external_contacts"]],
            group_name=GROUP,
            kinds={"duckdb", "python"},
        ),
        dg.AssetSpec(
            EXCLUSIONS,
            description=(
                "Why not: each (customer, campaign) pair that was eligible by target group but "
                "not assigned, with the reason (always_exclude, global_control, no_consent, "
                "duration_period, cap, "
                "pair_rule (with `rule_id`), lower_priority, capacity; the first rule that applies) "
                "and `taken_by`."
            ),
            deps=[SEGMENT_MEMBERSHIP],
            group_name=GROUP,
            kinds={"duckdb", "python"},
        ),
        dg.AssetSpec(
            GLOBAL_CONTROL,
            description=(
                "The global control group of date D (policies.global_control): a fixed "
                "salted-hash share of all customers that gets no marketing campaign "
                "(transactional ones still reach them). campaigns.global_control lists the "
                "members per date; campaigns.global_control_salts records each salt or share "
                "change with the first date that used it."
            ),
            deps=[SEGMENT_MEMBERSHIP],
            group_name=GROUP,
            kinds={"duckdb", "python"},
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "one_campaign_per_customer",
            asset=ASSIGNMENTS,
            blocking=True,
            description="No customer has two campaigns on one date.",
        ),
        dg.AssetCheckSpec(
            "no_new_campaign_inside_duration_lock",
            asset=ASSIGNMENTS,
            blocking=True,
            description="Locked customers only enter campaigns flagged ignore_locks.",
        ),
        dg.AssetCheckSpec(
            "global_control_gets_no_marketing",
            asset=ASSIGNMENTS,
            blocking=True,
            description="No global-control member is assigned a campaign that is not transactional.",
        ),
        dg.AssetCheckSpec(
            "caps_and_capacity_respected",
            asset=ASSIGNMENTS,
            blocking=True,
            description=(
                "No customer over a frequency cap or against a pair rule; no channel over its "
                "daily capacity."
            ),
        ),
    ],
    partitions_def=daily_partitions,
    pool=WAREHOUSE_POOL,
)
def campaign_assignments(
    context: dg.AssetExecutionContext,
    config: MatrixConfig,
    warehouse: DuckDBResource,
    campaign_catalog: CampaignCatalog,
):
    day = dt.date.fromisoformat(context.partition_key)
    catalog = campaign_catalog.load()
    with warehouse.get_connection() as con:
        require_tables(con, ASSIGNMENTS, [SEGMENT_MEMBERSHIP])
        run = daily.build_assignments(
            con,
            catalog,
            day,
            config.allow_gap,
            campaign_catalog.journey_contacts(),
            timezone=campaign_catalog.timezone,
        )
    for note in run.notes:
        context.log.warning(note)
    yield dg.MaterializeResult(
        asset_key=ASSIGNMENTS,
        metadata={
            "dagster/row_count": len(run.assignments),
            "by_campaign_and_channel": dg.MetadataValue.md(markdown_table(run.by_campaign, 60)),
            "control_share": run.control_share,
            "external_contacts_counted": run.external_contacts,
            "catalog": run.catalog_fingerprint,
            "notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in run.notes) or "none"),
        },
    )
    yield dg.MaterializeResult(
        asset_key=EXCLUSIONS,
        metadata={
            "dagster/row_count": len(run.exclusions),
            "by_reason": dg.MetadataValue.md(markdown_table(run.exclusions_by_reason)),
            "preview": dg.MetadataValue.md(markdown_table(run.exclusions.head(10))),
        },
    )
    policy = catalog.policies.global_control
    yield dg.MaterializeResult(
        asset_key=GLOBAL_CONTROL,
        metadata={
            "dagster/row_count": run.global_control_members,
            "share": policy.share if policy else 0.0,
            "salt": policy.salt if policy else "(no policies.global_control)",
            "salt_history": dg.MetadataValue.md(
                markdown_table(run.salt_history)
                if run.salt_history is not None and len(run.salt_history)
                else "no salt recorded"
            ),
        },
    )
    yield dg.AssetCheckResult(
        asset_key=ASSIGNMENTS,
        check_name="global_control_gets_no_marketing",
        passed=run.global_control_violations == 0,
        metadata={"violations": run.global_control_violations},
    )
    yield dg.AssetCheckResult(
        asset_key=ASSIGNMENTS,
        check_name="one_campaign_per_customer",
        passed=run.customers_with_two_campaigns == 0,
        metadata={"customers_with_two_campaigns": run.customers_with_two_campaigns},
    )
    yield dg.AssetCheckResult(
        asset_key=ASSIGNMENTS,
        check_name="no_new_campaign_inside_duration_lock",
        passed=run.lock_violations == 0,
        metadata={"violations": run.lock_violations},
    )
    yield dg.AssetCheckResult(
        asset_key=ASSIGNMENTS,
        check_name="caps_and_capacity_respected",
        passed=run.customers_over_cap == 0
        and run.channels_over_capacity == 0
        and run.pair_rule_violations == 0,
        metadata={
            "customers_over_cap": run.customers_over_cap,
            "pair_rule_violations": run.pair_rule_violations,
            "channels_over_capacity": run.channels_over_capacity,
        },
    )


@dg.asset(
    partitions_def=daily_partitions,
    pool=WAREHOUSE_POOL,
    group_name=GROUP,
    kinds={"duckdb", "python"},
    key=MATRIX,
    deps=[ASSIGNMENTS, EXCLUSIONS, MICRO_SEGMENTS],
)
def campaign_matrix(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, campaign_catalog: CampaignCatalog
) -> dg.MaterializeResult:
    """Micro-segment x date -> campaign with customer and control counts.

    The metadata shows the grid for the latest dates (largest micro-segments as rows, dates as
    columns, the campaigns each segment received with counts), the assignments per campaign and
    channel, the exclusions by reason and a chart of the matrix over time.
    """
    day = dt.date.fromisoformat(context.partition_key)
    catalog = campaign_catalog.load()
    with warehouse.get_connection() as con:
        require_tables(con, MATRIX, [ASSIGNMENTS])
        run = daily.build_matrix(con, catalog, day)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(run.matrix),
            "grid": dg.MetadataValue.md(
                f"Largest micro-segments, last {daily.GRID_DATES} dates (campaign, customers, "
                "control customers):\n\n" + markdown_table(run.grid, max_rows=10)
            ),
            "by_campaign_and_channel": dg.MetadataValue.md(markdown_table(run.by_campaign, 60)),
            "exclusions_by_reason": dg.MetadataValue.md(markdown_table(run.exclusions_by_reason)),
            "customers_assigned": run.customers_assigned,
            "control_share": run.control_share,
            "chart": dg.MetadataValue.md(run.chart),
        }
    )


@dg.asset(
    partitions_def=daily_partitions,
    pool=WAREHOUSE_POOL,
    group_name=GROUP,
    kinds={"duckdb", "python"},
    key=PLAN,
    deps=[ASSIGNMENTS, SEGMENT_MEMBERSHIP],
)
def campaign_plan(
    context: dg.AssetExecutionContext,
    config: PlanConfig,
    warehouse: DuckDBResource,
    campaign_catalog: CampaignCatalog,
) -> dg.MaterializeResult:
    """Forward preview: the matrix of the next N days (default 14) if today's segments held.

    Shows collisions (locks, caps, capacity) and gaps (days a segment gets nothing) before they
    happen; `campaign_plan_vs_actual` compares it with what ran.
    """
    day = dt.date.fromisoformat(context.partition_key)
    catalog = campaign_catalog.load()
    with warehouse.get_connection() as con:
        require_tables(con, PLAN, [SEGMENT_MEMBERSHIP])
        run = daily.build_plan(con, catalog, day, config.days)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(run.plan),
            "planned_per_day": dg.MetadataValue.md(
                markdown_table(run.planned_per_day, max_rows=config.days)
            ),
        }
    )


@dg.asset(
    partitions_def=daily_partitions,
    pool=WAREHOUSE_POOL,
    group_name=GROUP,
    kinds={"duckdb", "python"},
    key=PLAN_VS_ACTUAL,
    deps=[campaign_matrix, campaign_plan],
)
def campaign_plan_vs_actual(context: dg.AssetExecutionContext, warehouse: DuckDBResource):
    """For date D: customers per campaign as planned on each earlier date vs as actually run."""
    day = dt.date.fromisoformat(context.partition_key)
    with warehouse.get_connection() as con:
        require_tables(con, PLAN_VS_ACTUAL, [MATRIX])
        comparison = daily.build_plan_vs_actual(con, day)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(comparison),
            "comparison": dg.MetadataValue.md(markdown_table(comparison, max_rows=40)),
        }
    )
