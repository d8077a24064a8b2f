"""One campaign date in the warehouse: read its inputs, run the matrix engine, write and summarise it.

The Dagster assets of the segments and campaigns groups call these functions with a warehouse
connection and put the returned summaries in their metadata. Every function replaces its date
whole (``replace_dates``), so a rerun of a date is safe.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pandas as pd

from tessera.campaigns import global_control, invariants, report
from tessera.campaigns.catalog import CHANNEL_PROVIDERS, Catalog
from tessera.campaigns.engine import REASONS, assign_campaigns, matrix_from_assignments
from tessera.campaigns.errors import MatrixInputError
from tessera.campaigns.plan import (
    PLAN_COLUMNS,
    PLAN_SCHEMA,
    PLAN_VS_ACTUAL_SCHEMA,
    as_table,
    plan_vs_actual,
    project_plan,
)
from tessera.campaigns.segmentation import (
    SegmentResult,
    UnavailableParts,
    segment_customers,
    unavailable_parts,
)
from tessera.reporting import png_markdown
from tessera.warehouse.duckdb_io import local_date_sql, read, replace_dates, table_exists

#: The matrix grid in the metadata shows this many dates up to D.
GRID_DATES = 7
#: The chart of the matrix over time shows this many dates up to D.
CHART_DATES = 14
SCORES_TABLE = "ml.customer_scores"

# --- segments ------------------------------------------------------------------------------------

_INPUT_SQL = """
select f.*, {scores}
       d.is_email_valid, d.is_phone_valid,
       lower(nullif(split_part(d.email, '@', 2), '')) as email_domain
from marts.customer_features f
{scores_join}
left join marts.dim_customers d on d.customer_id = f.customer_id
where f.as_of_date = $d
"""
_SCORES = "s.churn_probability, s.predicted_value_90d, s.clv_12m,"
_SCORES_JOIN = "left join ml.customer_scores s on s.customer_id = f.customer_id and s.as_of_date = f.as_of_date"
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


@dataclass(frozen=True)
class SegmentsDay:
    """The segmentation of one date as written, with what its metadata reports."""

    result: SegmentResult
    customers: int  # customers with as-of-D features
    without_segment: int  # of them, those with no micro-segment (must be 0)
    unavailable: UnavailableParts  # catalog parts that need data this shop lacks on D
    target_group_sizes: pd.DataFrame  # target_group, customers
    reachable: dict[str, int]  # is_<channel>_reachable -> customers


def scores_built(con: duckdb.DuckDBPyConnection, day: dt.date) -> bool:
    """Whether the segments of ``day`` read scores: False when the warehouse was never scored.

    ml.customer_scores does not exist until `ml/customer_scores` has run once. The daily
    pipeline always scores D before it segments D, so the table is missing only when segments
    are built without the ml group on a warehouse no model has scored (the campaign tests, a
    selection in the UI): the score attributes are then NULL and the catalog parts built on them
    are reported like those of a source not provided. Once the table exists, a date with
    features but no scores is an error naming it: its segments would silently put everyone in
    the score dimensions' null buckets.
    """
    if not table_exists(con, SCORES_TABLE):
        return False
    scored, featured = con.execute(
        "select (select count(*) from ml.customer_scores where as_of_date = $d),"
        " (select count(*) from marts.customer_features where as_of_date = $d)",
        {"d": day},
    ).fetchall()[0]
    if featured and not scored:
        raise MatrixInputError(
            f"{SCORES_TABLE} has no scores for {day} ({featured} customers have features):"
            f" materialize ml/customer_scores for {day} before the segments (or run the whole"
            " daily_pipeline job for this date)"
        )
    return True


def build_segments(con: duckdb.DuckDBPyConnection, catalog: Catalog, day: dt.date) -> SegmentsDay:
    """Segment the customers of ``day`` and write segments.segment_membership and micro_segments.

    Reads marts.customer_features, marts.dim_customers (both must exist), ml.customer_scores
    (see `scores_built`) and intermediate.int_sources_provided (without it every source counts
    as provided). ``unavailable`` names the catalog parts that need a source not provided, or
    the scores of a warehouse never scored.
    """
    scored = scores_built(con, day)
    sql = _INPUT_SQL.format(
        scores=_SCORES if scored else "", scores_join=_SCORES_JOIN if scored else ""
    )
    customers = con.execute(sql, {"d": day}).df()
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
    membership = result.membership
    sizes = membership["target_groups"].explode().value_counts().rename_axis("target_group")
    return SegmentsDay(
        result=result,
        customers=len(customers),
        without_segment=invariants.customers_without_segment(
            customers["customer_id"].astype(str), membership
        ),
        unavailable=unavailable_parts(catalog, missing_sources, scores_missing=not scored),
        target_group_sizes=sizes.reset_index(name="customers"),
        reachable={c: int(membership[c].sum()) for c in membership.columns if "reachable" in c},
    )


# --- assignments and exclusions ---------------------------------------------------------------


@dataclass(frozen=True)
class AssignmentsDay:
    """The assignments and exclusions of one date as written, with their invariant counts."""

    assignments: pd.DataFrame
    exclusions: pd.DataFrame
    notes: list[str]  # warnings about the dates around D (a gap allowed, later dates to redo)
    catalog_fingerprint: str
    by_campaign: pd.DataFrame  # campaign, channel, assigned, control, control_share
    exclusions_by_reason: pd.DataFrame  # reason, pairs
    control_share: float
    customers_with_two_campaigns: int
    lock_violations: int
    customers_over_cap: int
    channels_over_capacity: int
    pair_rule_violations: int = 0
    global_control_members: int = 0
    global_control_violations: int = 0  # members given a marketing campaign (must be 0)
    salt_history: pd.DataFrame | None = None  # campaigns.global_control_salts up to D
    #: Messages other systems sent inside the cap window that counted against the caps.
    external_contacts: int = 0


def _previous_salt(
    con: duckdb.DuckDBPyConnection, day: dt.date
) -> tuple[str | None, float | None] | None:
    rows = read(
        con,
        f"select salt, share from {global_control.SALTS_TABLE} where as_of_date < $d"
        " order by as_of_date desc limit 1",
        {"d": day},
    )
    if rows is None or rows.empty:
        return None
    salt, share = rows.iloc[0]
    return (None if pd.isna(salt) else str(salt), float(share))


def _history(
    con: duckdb.DuckDBPyConnection, day: dt.date, lookback_days: int
) -> pd.DataFrame | None:
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


EXTERNAL_TABLE = "raw.external_contacts"

#: Messages other systems sent, inside the cap window before D, as contact-history rows. A row
#: names its customer by customer_id, else by an address that is a customer's e-mail (any case)
#: or phone. They are contacts, never controls, and set no lock (`locked_until` = the day sent).
#: The day sent is the shop's calendar day ($tz), like the campaign dates the caps count in.
_EXTERNAL_SQL = f"""
with src as (
    select nullif(trim(customer_id), '') as customer_id, nullif(trim(address), '') as address,
           lower(trim(channel)) as channel, department,
           {local_date_sql("try_cast(sent_at as timestamp)", "$tz")} as sent_on
    from raw.external_contacts
),
by_address as (
    select distinct lower(trim(email)) as address, customer_id from marts.dim_customers
    where email is not null
    union
    select distinct trim(phone), customer_id from marts.dim_customers where phone is not null
),
resolved as (
    select coalesce(s.customer_id, a.customer_id) as customer_id, s.channel, s.department,
           s.sent_on
    from src s left join by_address a on s.customer_id is null and a.address = lower(s.address)
)
select sent_on as as_of_date, customer_id, 'external:' || coalesce(department, '') as campaign_id,
       channel, false as is_control, sent_on as locked_until
from resolved
where customer_id is not null
  and sent_on < $d and sent_on >= cast($d - to_days(cast($n as integer)) as date)
"""


def _check_external(con: duckdb.DuckDBPyConnection) -> None:
    """Refuse external contacts the caps cannot count, naming the file, row and field."""
    channels = sorted(CHANNEL_PROVIDERS)
    bad = con.execute(
        """
        select _source_file, _source_row, sent_at, channel,
               try_cast(sent_at as timestamp) is null as bad_time,
               coalesce(lower(trim(channel)) not in (select unnest($channels)), true) as bad_channel
        from raw.external_contacts
        where try_cast(sent_at as timestamp) is null
           or coalesce(lower(trim(channel)) not in (select unnest($channels)), true)
           or (nullif(trim(customer_id), '') is null and nullif(trim(address), '') is null)
        order by _source_file, _source_row
        limit 1
        """,
        {"channels": channels},
    ).fetchall()
    if not bad:
        return
    file, row, sent_at, channel, bad_time, bad_channel = bad[0]
    if bad_time:
        problem = f"sent_at {sent_at!r} is not a timestamp"
    elif bad_channel:
        problem = f"channel {channel!r} is not one of {', '.join(channels)}"
    else:
        problem = "neither customer_id nor address is given"
    raise MatrixInputError(
        f"external_contacts {file} row {row}: {problem}; fix the file (it counts against the "
        "frequency caps) and rerun the date"
    )


def external_history(
    con: duckdb.DuckDBPyConnection, day: dt.date, lookback_days: int, timezone: str = "UTC"
) -> pd.DataFrame | None:
    """Messages other systems sent (raw.external_contacts) in the ``lookback_days`` before
    ``day``, as contact history the caps count; None when the source was never landed.
    A message's day is its calendar day in ``timezone`` (the shop's, TESSERA_TIMEZONE)."""
    if not table_exists(con, EXTERNAL_TABLE):
        return None
    # the loader creates the table empty when the shop lands none
    if not con.execute(f"select count(*) from {EXTERNAL_TABLE}").fetchall()[0][0]:
        return None
    _check_external(con)
    sql = _EXTERNAL_SQL
    if not table_exists(con, "marts.dim_customers"):
        # no customer table to match addresses against (a warehouse dbt has not built):
        # contacts count by customer_id only
        sql = sql.replace(
            "from marts.dim_customers",
            "from (select null::varchar as email, "
            "null::varchar as phone, null::varchar as customer_id)",
        )
    return con.execute(sql, {"d": day, "n": lookback_days, "tz": timezone}).df()


def check_previous_date(con: duckdb.DuckDBPyConnection, day: dt.date, allow_gap: bool) -> list[str]:
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


def _membership(con: duckdb.DuckDBPyConnection, day: dt.date) -> pd.DataFrame:
    membership = con.execute(
        "select * from segments.segment_membership where as_of_date = $d", {"d": day}
    ).df()
    if membership.empty:
        raise MatrixInputError(f"segments.segment_membership has no rows for {day}")
    return membership


def build_assignments(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    day: dt.date,
    allow_gap: bool = False,
    journey_contacts: pd.DataFrame | None = None,
    timezone: str = "UTC",
) -> AssignmentsDay:
    """Run the matrix engine for ``day`` on its segment membership and the earlier assignments.

    ``journey_contacts`` (tessera.journeys.engine.journey_contacts: the triggered messages and
    journey locks, history-shaped) count like earlier assignments: in caps and as locks.
    Their days, and those of external contacts, are calendar days in ``timezone`` (the shop's,
    the campaign dates' own), so a cap's day is the same day on both paths.

    Writes campaigns.campaign_assignments, campaigns.exclusions and campaigns.matrix_runs in one
    transaction. A date whose previous date was never built is refused unless ``allow_gap``.
    """
    lookback = max(
        [cap.days for cap in catalog.policies.caps]
        + [rule.days for rule in catalog.policies.pair_rules]
        + [1]
    )
    notes = check_previous_date(con, day, allow_gap)
    membership = _membership(con, day)
    history = _history(con, day, lookback)
    if journey_contacts is not None and not journey_contacts.empty:
        history = pd.concat(
            [
                h
                for h in (history, journey_contacts[list(journey_contacts.columns)])
                if h is not None
            ],
            ignore_index=True,
        )
    external = external_history(con, day, lookback, timezone)
    if external is not None and not external.empty:
        history = external if history is None else pd.concat([history, external], ignore_index=True)
    result = assign_campaigns(membership, catalog, day, history)
    if table_exists(con, "campaigns.exclusions"):
        # warehouses built before pair rules have no rule_id column yet
        con.execute("alter table campaigns.exclusions add column if not exists rule_id varchar")
    policy = catalog.policies.global_control
    holdout = global_control.members(membership, policy, day)
    salt_row = global_control.salt_change(
        _previous_salt(con, day), policy, day, catalog.fingerprint()
    )
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
            (global_control.MEMBERS_TABLE, holdout),
            # a row only on the dates that changed the salt: a rerun replaces its own date's
            # row, or removes it when the salt is again the one before
            (global_control.SALTS_TABLE, salt_row),
        ],
        day,
    )
    assignments = result.assignments.to_pandas()
    exclusions = result.exclusions.to_pandas()
    hist = history if history is not None else assignments.iloc[0:0]
    return AssignmentsDay(
        assignments=assignments,
        exclusions=exclusions,
        notes=notes,
        catalog_fingerprint=catalog.fingerprint(),
        by_campaign=report.assignments_by_campaign(assignments, catalog),
        exclusions_by_reason=report.exclusions_by_reason(exclusions),
        control_share=float(assignments["is_control"].mean()) if len(assignments) else 0.0,
        customers_with_two_campaigns=invariants.duplicate_assignments(assignments),
        lock_violations=invariants.lock_violations(assignments, hist, catalog, day),
        customers_over_cap=invariants.cap_violations(assignments, hist, catalog, day),
        pair_rule_violations=invariants.pair_rule_violations(assignments, hist, catalog, day),
        channels_over_capacity=invariants.capacity_violations(assignments, catalog),
        global_control_members=holdout.num_rows,
        global_control_violations=invariants.global_control_violations(assignments, catalog),
        salt_history=read(
            con,
            f"select * from {global_control.SALTS_TABLE} where as_of_date <= $d"
            " order by as_of_date",
            {"d": day},
        ),
        external_contacts=0 if external is None else len(external),
    )


# --- the matrix -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatrixDay:
    """The micro-segment x campaign matrix of one date as written, with its review material."""

    matrix: pd.DataFrame  # as_of_date, micro_segment_id, campaign_id, customer_count, control_count
    grid: pd.DataFrame  # largest micro-segments x the last GRID_DATES dates
    by_campaign: pd.DataFrame
    exclusions_by_reason: pd.DataFrame
    customers_assigned: int
    control_share: float
    chart: str  # Markdown with the PNG of the assignments per date and campaign


def build_matrix(con: duckdb.DuckDBPyConnection, catalog: Catalog, day: dt.date) -> MatrixDay:
    """Write campaigns.campaign_matrix for ``day`` from that date's assignments.

    The matrix is the engine's own (`matrix_from_assignments`, the `MatrixResult.matrix` of the
    assignment run) over the assignments written for ``day``; campaigns.campaign_assignments and
    campaigns.exclusions must exist.
    """
    assignments = con.sql(
        "select * from campaigns.campaign_assignments where as_of_date = $d", params={"d": day}
    ).to_arrow_table()
    con.register("_assignments_of_day", assignments)
    try:
        matrix = matrix_from_assignments(con, "_assignments_of_day")
    finally:
        con.unregister("_assignments_of_day")
    replace_dates(con, [("campaigns.campaign_matrix", matrix)], day)
    recent = con.execute(
        """
        select * from campaigns.campaign_matrix
        where as_of_date between cast($d - to_days(cast($n as integer)) as date) and $d
        """,
        {"d": day, "n": GRID_DATES - 1},
    ).df()
    series = con.execute(
        """
        select as_of_date, campaign_id, count(*) as n from campaigns.campaign_assignments
        where as_of_date between cast($d - to_days(cast($n as integer)) as date) and $d
        group by all
        """,
        {"d": day, "n": CHART_DATES - 1},
    ).df()
    excluded = con.execute(
        "select reason, count(*) as n from campaigns.exclusions where as_of_date = $d group by all",
        {"d": day},
    ).df()
    counts = dict(zip(excluded["reason"], excluded["n"], strict=True))
    matrix_frame = matrix.to_pandas()
    total = int(matrix_frame["customer_count"].sum())
    control = int(matrix_frame["control_count"].sum())
    fig = report.assignments_chart(series, catalog, f"Campaign matrix up to {day}")
    return MatrixDay(
        matrix=matrix_frame,
        # segment sizes of D order the grid rows, whatever the older dates held
        grid=report.matrix_grid(recent, catalog),
        by_campaign=report.assignments_by_campaign(assignments.to_pandas(), catalog),
        exclusions_by_reason=pd.DataFrame(
            {"reason": list(REASONS), "pairs": [int(counts.get(r, 0)) for r in REASONS]}
        ),
        customers_assigned=total,
        control_share=round(control / total, 4) if total else 0.0,
        chart=png_markdown(fig, "campaign matrix"),
    )


# --- forward plan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanDay:
    """The forward plan made on one date as written, and its customers per day and campaign."""

    plan: pd.DataFrame
    planned_per_day: pd.DataFrame  # as_of_date (MM-DD) x campaign_id -> customers


def build_plan(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, day: dt.date, days: int
) -> PlanDay:
    """Project the matrix of the ``days`` dates after ``day`` and write campaigns.campaign_plan."""
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
    plan = project_plan(membership, catalog, day, days, history)
    written = as_table(plan, PLAN_SCHEMA)
    replace_dates(con, [("campaigns.campaign_plan", written)], day, date_column="plan_date")
    per_day = (
        plan.groupby(["as_of_date", "campaign_id"])["customer_count"].sum().unstack(fill_value=0)
        if len(plan)
        else pd.DataFrame()
    )
    if len(per_day):
        per_day.index = pd.to_datetime(per_day.index).strftime("%m-%d")
    return PlanDay(plan=plan, planned_per_day=per_day.reset_index())


def build_plan_vs_actual(con: duckdb.DuckDBPyConnection, day: dt.date) -> pd.DataFrame:
    """Compare each earlier plan covering ``day`` with its matrix; write campaigns.plan_vs_actual.

    campaigns.campaign_matrix must exist; without any plan table there is nothing to compare.
    """
    # No plan table yet (this date's plan step has not run): nothing to compare.
    plans = read(
        con,
        "select * from campaigns.campaign_plan where as_of_date = $d and plan_date < $d",
        {"d": day},
    )
    actual = con.execute(
        "select * from campaigns.campaign_matrix where as_of_date = $d", {"d": day}
    ).df()
    if plans is None:
        plans = pd.DataFrame(columns=PLAN_COLUMNS)
    comparison = plan_vs_actual(plans, actual, day)
    # Written also without rows: a reader finds an empty table for the date, not none.
    replace_dates(
        con, [("campaigns.plan_vs_actual", as_table(comparison, PLAN_VS_ACTUAL_SCHEMA))], day
    )
    return comparison
