"""The daily campaign matrix in Dagster: assignments, exclusions, matrix grid and forward plan."""

import datetime as dt

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from tessera.campaigns import invariants, report
from tessera.campaigns.engine import REASONS, assign_campaigns
from tessera.campaigns.errors import MatrixInputError
from tessera.campaigns.plan import plan_vs_actual, project_plan
from tessera.orchestration.defs.campaigns.resources import CampaignCatalog
from tessera.orchestration.defs.partitions import WAREHOUSE_POOL, daily_partitions
from tessera.orchestration.defs.segments.assets import MICRO_SEGMENTS, SEGMENT_MEMBERSHIP
from tessera.orchestration.defs.upstream import require_tables
from tessera.reporting import markdown_table, png_markdown
from tessera.warehouse.duckdb_io import read, replace_dates

GROUP = "campaigns"
ASSIGNMENTS = dg.AssetKey(["campaigns", "campaign_assignments"])
EXCLUSIONS = dg.AssetKey(["campaigns", "exclusions"])
MATRIX = dg.AssetKey(["campaigns", "campaign_matrix"])
PLAN = dg.AssetKey(["campaigns", "campaign_plan"])
PLAN_VS_ACTUAL = dg.AssetKey(["campaigns", "plan_vs_actual"])
GRID_DATES = 7


class MatrixConfig(dg.Config):
    """Run flags of the matrix date."""

    allow_gap: bool = False
    """Build D although D-1 was never built (locks set on missing dates are then unknown)."""


class PlanConfig(dg.Config):
    days: int = 14
    """How many days after D the forward plan projects."""


def _history(con, day: dt.date, lookback_days: int) -> pd.DataFrame | None:
    # locks still open on D, plus every contact inside the longest cap window
    return read(
        con,
        """
        select as_of_date, customer_id, campaign_id, channel, is_control, locked_until
        from campaigns.campaign_assignments
        where as_of_date < $d
          and (locked_until > $d or as_of_date >= cast($d - to_days(cast($n as integer)) as date))
        """,
        {"d": day, "n": lookback_days},
    )


def _check_previous_date(con, day: dt.date, allow_gap: bool) -> list[str]:
    """Refuse D when earlier dates exist but D-1 does not: its locks would be silently lost."""
    runs = read(con, "select as_of_date from campaigns.matrix_runs")
    if runs is None or runs.empty:
        return []
    done = set(pd.to_datetime(runs["as_of_date"]).dt.date)
    earlier = [d for d in done if d < day]
    previous = day - dt.timedelta(days=1)
    notes = []
    if earlier and previous not in done:
        message = (
            f"campaign matrix for {day}: the previous date {previous} was never built (last"
            f" built before it: {max(earlier)}), so its duration locks and cap contacts are"
            f" unknown. Materialize the missing dates in order (a backfill from {previous}"
            " backwards to the last built date), or rerun with config allow_gap: true."
        )
        if not allow_gap:
            raise MatrixInputError(message)
        notes.append("built with allow_gap: " + message)
    later = sorted(d for d in done if d > day)
    if later:
        notes.append(
            f"{len(later)} later date(s) ({later[0]} .. {later[-1]}) were built on the previous"
            f" {day}: re-materialize them in order so their locks follow this run"
        )
    return notes


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ASSIGNMENTS,
            description=(
                "Who gets which campaign on date D, on which channel, and who is in the control "
                "group (assigned and recorded, not contacted). One campaign per customer per "
                "date; `locked_until` (exclusive) ends the duration lock. Activations send the "
                "non-control rows."
            ),
            deps=[SEGMENT_MEMBERSHIP],
            group_name=GROUP,
            kinds={"duckdb", "python"},
        ),
        dg.AssetSpec(
            EXCLUSIONS,
            description=(
                "Why not: each (customer, campaign) pair that was eligible by target group but "
                "not assigned, with the reason (always_exclude, no_consent, duration_period, cap, "
                "lower_priority, capacity; the first rule that applies) and `taken_by`."
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
            "caps_and_capacity_respected",
            asset=ASSIGNMENTS,
            blocking=True,
            description="No customer over a frequency cap; no channel over its daily capacity.",
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
    lookback = max([cap.days for cap in catalog.policies.caps] + [1])
    with warehouse.get_connection() as con:
        require_tables(con, ASSIGNMENTS, [SEGMENT_MEMBERSHIP])
        notes = _check_previous_date(con, day, config.allow_gap)
        for note in notes:
            context.log.warning(note)
        membership = con.execute(
            "select * from segments.segment_membership where as_of_date = $d", {"d": day}
        ).df()
        if membership.empty:
            raise MatrixInputError(f"segments.segment_membership has no rows for {day}")
        history = _history(con, day, lookback)
        result = assign_campaigns(membership, catalog, day, history)
        runs = pd.DataFrame(
            {
                "as_of_date": [day],
                "catalog_fingerprint": [catalog.fingerprint()],
                "computed_at": [pd.Timestamp.now(tz="UTC").tz_localize(None)],
                "assignments": [result.assignments.num_rows],
                "exclusions": [result.exclusions.num_rows],
            }
        )
        replace_dates(
            con,
            [
                ("campaigns.campaign_assignments", result.assignments),
                ("campaigns.exclusions", result.exclusions),
                ("campaigns.matrix_runs", runs),
            ],
            day,
        )
    assignments = result.assignments.to_pandas()
    exclusions = result.exclusions.to_pandas()
    hist = history if history is not None else assignments.iloc[0:0]
    by_campaign = report.assignments_by_campaign(assignments, catalog)
    yield dg.MaterializeResult(
        asset_key=ASSIGNMENTS,
        metadata={
            "dagster/row_count": len(assignments),
            "by_campaign_and_channel": dg.MetadataValue.md(markdown_table(by_campaign, 60)),
            "control_share": float(assignments["is_control"].mean()) if len(assignments) else 0.0,
            "catalog": catalog.fingerprint(),
            "notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in notes) or "none"),
        },
    )
    yield dg.MaterializeResult(
        asset_key=EXCLUSIONS,
        metadata={
            "dagster/row_count": len(exclusions),
            "by_reason": dg.MetadataValue.md(
                markdown_table(report.exclusions_by_reason(exclusions))
            ),
            "preview": dg.MetadataValue.md(markdown_table(exclusions.head(10))),
        },
    )
    duplicates = invariants.duplicate_assignments(assignments)
    locks = invariants.lock_violations(assignments, hist, catalog, day)
    caps = invariants.cap_violations(assignments, hist, catalog, day)
    capacity = invariants.capacity_violations(assignments, catalog)
    yield dg.AssetCheckResult(
        asset_key=ASSIGNMENTS,
        check_name="one_campaign_per_customer",
        passed=duplicates == 0,
        metadata={"customers_with_two_campaigns": duplicates},
    )
    yield dg.AssetCheckResult(
        asset_key=ASSIGNMENTS,
        check_name="no_new_campaign_inside_duration_lock",
        passed=locks == 0,
        metadata={"violations": locks},
    )
    yield dg.AssetCheckResult(
        asset_key=ASSIGNMENTS,
        check_name="caps_and_capacity_respected",
        passed=caps == 0 and capacity == 0,
        metadata={"customers_over_cap": caps, "channels_over_capacity": capacity},
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
        matrix = con.execute(
            """
            select as_of_date, micro_segment_id, campaign_id, count(*) as customer_count,
                   count(*) filter (where is_control) as control_count
            from campaigns.campaign_assignments where as_of_date = $d
            group by all order by customer_count desc, micro_segment_id, campaign_id
            """,
            {"d": day},
        ).df()
        replace_dates(con, [("campaigns.campaign_matrix", matrix)], day)
        recent = read(
            con,
            """
            select * from campaigns.campaign_matrix
            where as_of_date between cast($d - to_days(cast($n as integer)) as date) and $d
            """,
            {"d": day, "n": GRID_DATES - 1},
        )
        series = read(
            con,
            """
            select as_of_date, campaign_id, count(*) as n from campaigns.campaign_assignments
            where as_of_date between cast($d - to_days(13) as date) and $d group by all
            """,
            {"d": day},
        )
        assignments = read(
            con,
            "select * from campaigns.campaign_assignments where as_of_date = $d",
            {"d": day},
        )
        exclusions = read(
            con,
            "select reason, count(*) as n from campaigns.exclusions where as_of_date = $d"
            " group by all",
            {"d": day},
        )
    # segment sizes of D order the grid rows, whatever the older dates held
    grid = report.matrix_grid(recent, catalog)
    counts = dict(zip(exclusions["reason"], exclusions["n"], strict=True))
    reasons = pd.DataFrame(
        {"reason": list(REASONS), "pairs": [int(counts.get(r, 0)) for r in REASONS]}
    )
    fig = report.assignments_chart(series, catalog, f"Campaign matrix up to {day}")
    control = int(matrix["control_count"].sum())
    total = int(matrix["customer_count"].sum())
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(matrix),
            "grid": dg.MetadataValue.md(
                f"Largest micro-segments, last {GRID_DATES} dates (campaign, customers, "
                "control customers):\n\n" + markdown_table(grid, max_rows=10)
            ),
            "by_campaign_and_channel": dg.MetadataValue.md(
                markdown_table(report.assignments_by_campaign(assignments, catalog), 60)
            ),
            "exclusions_by_reason": dg.MetadataValue.md(markdown_table(reasons)),
            "customers_assigned": total,
            "control_share": round(control / total, 4) if total else 0.0,
            "chart": dg.MetadataValue.md(png_markdown(fig, "campaign matrix")),
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
        membership = con.execute(
            "select * from segments.segment_membership where as_of_date = $d", {"d": day}
        ).df()
        # The assignments table exists once a date had assignments (none yet: no history).
        history = read(
            con,
            "select as_of_date, customer_id, campaign_id, channel, is_control, locked_until"
            " from campaigns.campaign_assignments where as_of_date <= $d",
            {"d": day},
        )
        if membership.empty:
            raise MatrixInputError(f"segments.segment_membership has no rows for {day}")
        plan = project_plan(membership, catalog, day, config.days, history)
        replace_dates(con, [("campaigns.campaign_plan", plan)], day, date_column="plan_date")
    per_day = (
        plan.groupby(["as_of_date", "campaign_id"])["customer_count"].sum().unstack(fill_value=0)
        if len(plan)
        else pd.DataFrame()
    )
    if len(per_day):
        per_day.index = pd.to_datetime(per_day.index).strftime("%m-%d")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(plan),
            "planned_per_day": dg.MetadataValue.md(
                markdown_table(per_day.reset_index(), max_rows=config.days)
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
        # The plan table exists once a plan had rows: none yet means nothing to compare.
        plans = read(
            con,
            "select * from campaigns.campaign_plan where as_of_date = $d and plan_date < $d",
            {"d": day},
        )
        actual = con.execute(
            "select * from campaigns.campaign_matrix where as_of_date = $d", {"d": day}
        ).df()
        comparison = pd.DataFrame() if plans is None else plan_vs_actual(plans, actual, day)
        if len(comparison):
            replace_dates(con, [("campaigns.plan_vs_actual", comparison)], day)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(comparison),
            "comparison": dg.MetadataValue.md(markdown_table(comparison, max_rows=40)),
        }
    )
