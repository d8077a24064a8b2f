"""What each review page shows, read from a snapshot connection into plain frames."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from tessera.activations.approval import (
    AUDIT_TABLE,
    approval_manifest,
    diff_manifests,
    fingerprint,
    stored_approval,
    stored_hold,
)
from tessera.activations.errors import ActivationError
from tessera.campaigns.catalog import Catalog, Dimension
from tessera.warehouse.duckdb_io import read, table_exists

#: How far the calendar looks back and forward.
CALENDAR_DAYS = 14
#: Messages one customer may get on a date before the calendar marks a collision.
COLLISION_MESSAGES = 2


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> pd.DataFrame:
    out = read(con, sql, params)
    return pd.DataFrame() if out is None else out


def latest_date(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    """The newest campaign date with a matrix."""
    out = read(con, "select max(as_of_date) as d from campaigns.campaign_matrix")
    if out is None or out.empty or pd.isna(out["d"][0]):
        return None
    return pd.Timestamp(out["d"][0]).date()


# -- segment labels ------------------------------------------------------------------------


def _edge(value: float) -> str:
    return f"{value:g}"


def bucket_texts(dimension: Dimension) -> dict[str, str]:
    """What each bucket label of a dimension means, e.g. {"veteran": "tenure_days >= 365"}."""
    attr = dimension.attribute
    out: dict[str, str] = {dimension.null_label: f"{attr} unknown"}
    if dimension.values is not None:
        out.update({v: f"{attr} = {v}" for v in dimension.values})
        out[dimension.other_label] = f"{attr} another value"
        return out
    labels = dimension.labels or []
    if dimension.bins is not None:
        edges = dimension.bins
        for i, label in enumerate(labels):
            if i == 0:
                out[label] = f"{attr} < {_edge(edges[0])}"
            elif i == len(edges):
                out[label] = f"{attr} >= {_edge(edges[-1])}"
            else:
                out[label] = f"{_edge(edges[i - 1])} <= {attr} < {_edge(edges[i])}"
    elif dimension.quantiles is not None:
        qs = [0.0, *dimension.quantiles, 1.0]
        for i, label in enumerate(labels):
            out[label] = f"{attr} in the {qs[i]:.0%}-{qs[i + 1]:.0%} band of the date"
    return out


@dataclass(frozen=True)
class SegmentLabel:
    """A micro-segment in words: one (dimension, bucket, meaning) per layer."""

    segment_id: str
    parts: tuple[tuple[str, str, str], ...]

    @property
    def short(self) -> str:
        return " · ".join(f"{bucket.replace('_', ' ')}" for _, bucket, _ in self.parts)

    @property
    def long(self) -> str:
        return "; ".join(f"{dim}: {meaning}" for dim, _, meaning in self.parts)


def segment_label(catalog: Catalog, segment_id: str) -> SegmentLabel:
    """Label a micro-segment id ("veteran|heavy|...") with the catalog's dimensions."""
    buckets = str(segment_id).split("|")
    parts = []
    for i, bucket in enumerate(buckets):
        if i < len(catalog.dimensions):
            dim = catalog.dimensions[i]
            meaning = bucket_texts(dim).get(bucket, bucket)
            name = dim.description or dim.id
            parts.append((dim.id if not dim.description else f"{dim.id} ({name})", bucket, meaning))
        else:
            parts.append((f"layer {i + 1}", bucket, bucket))
    return SegmentLabel(str(segment_id), tuple(parts))


# -- calendar ------------------------------------------------------------------------------


@dataclass
class Calendar:
    """Campaigns x dates: counts, and what to look at per cell and per date."""

    dates: list[dt.date]
    latest: dt.date | None
    campaigns: list[str]
    #: (campaign, date) -> customers targeted (treatment), actual or planned.
    counts: dict[tuple[str, dt.date], int] = field(default_factory=dict)
    #: (campaign, date) -> customers cut by channel capacity.
    capacity_cuts: dict[tuple[str, dt.date], int] = field(default_factory=dict)
    #: date -> customers with more than COLLISION_MESSAGES-1 messages that date.
    collisions: dict[dt.date, int] = field(default_factory=dict)
    #: past dates without a matrix run (nothing was planned or sent).
    gaps: list[dt.date] = field(default_factory=list)
    #: the first date with a matrix run (earlier dates have no data, rather than zeros).
    first: dt.date | None = None


def calendar(con: duckdb.DuckDBPyConnection, catalog: Catalog) -> Calendar:
    latest = latest_date(con)
    if latest is None:
        return Calendar(dates=[], latest=None, campaigns=[c.id for c in catalog.campaigns])
    start = latest - dt.timedelta(days=CALENDAR_DAYS - 1)
    end = latest + dt.timedelta(days=CALENDAR_DAYS)
    dates = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    cal = Calendar(dates=dates, latest=latest, campaigns=[c.id for c in catalog.campaigns])
    past = _frame(
        con,
        "select as_of_date, campaign_id, sum(customer_count - control_count) as n "
        "from campaigns.campaign_matrix where as_of_date between $s and $e group by all",
        {"s": start, "e": latest},
    )
    plan = _frame(
        con,
        "select as_of_date, campaign_id, sum(customer_count - control_count) as n "
        "from campaigns.campaign_plan where plan_date = $d and as_of_date > $d group by all",
        {"d": latest},
    )
    for frame in (past, plan):
        for row in frame.itertuples(index=False):
            cal.counts[(row.campaign_id, pd.Timestamp(row.as_of_date).date())] = int(row.n)
    cuts = _frame(
        con,
        "select as_of_date, campaign_id, count(*) as n from campaigns.exclusions "
        "where reason = 'capacity' and as_of_date between $s and $e group by all",
        {"s": start, "e": latest},
    )
    for row in cuts.itertuples(index=False):
        cal.capacity_cuts[(row.campaign_id, pd.Timestamp(row.as_of_date).date())] = int(row.n)
    coll = _frame(
        con,
        "select d, count(*) as n from (select cast(as_of_date as date) as d, customer_id "
        "from activations.outbound_messages where cast(as_of_date as date) between $s and $e "
        "group by all having count(*) >= $k) group by d",
        {"s": start, "e": latest, "k": COLLISION_MESSAGES},
    )
    cal.collisions = {pd.Timestamp(r.d).date(): int(r.n) for r in coll.itertuples(index=False)}
    runs = _frame(con, "select distinct as_of_date from campaigns.matrix_runs")
    ran = {pd.Timestamp(d).date() for d in runs.get("as_of_date", [])}
    first = min(ran) if ran else latest
    cal.first = first
    cal.gaps = [d for d in dates if first <= d <= latest and d not in ran]
    known = set(cal.campaigns)
    cal.campaigns += sorted({c for c, _ in cal.counts} - known)
    return cal


# -- date ----------------------------------------------------------------------------------


@dataclass
class ApprovalState:
    """Whether a date is approved or held, by whom, what changed since, and the fingerprint of
    the messages as shown (what an approval from this page binds)."""

    approved: bool
    approved_at: object = None
    approved_by: str | None = None
    note: str = ""
    messages: int = 0
    #: "" when the messages are exactly the approved ones.
    changed: str = ""
    held_by: str | None = None
    held_at: object = None
    hold_note: str = ""
    #: Fingerprint and count of the outbound messages in the snapshot ("" when there are none).
    fingerprint: str = ""
    current_messages: int = 0


def approval_state(con: duckdb.DuckDBPyConnection, day: dt.date) -> ApprovalState:
    messages = _frame(
        con,
        "select * from activations.outbound_messages where cast(as_of_date as date) = $d",
        {"d": day},
    )
    shown = {
        "fingerprint": fingerprint(approval_manifest(messages)) if not messages.empty else "",
        "current_messages": len(messages),
    }
    hold = stored_hold(con, day)
    if hold is not None:
        return ApprovalState(
            approved=False,
            held_by=str(hold["held_by"]),
            held_at=hold["held_at"],
            hold_note=str(hold.get("note") or ""),
            **shown,
        )
    try:
        manifest, row = stored_approval(con, day)
    except ActivationError as exc:
        return ApprovalState(approved=False, changed=str(exc), **shown)
    if row is None:
        return ApprovalState(approved=False, **shown)
    changed = ""
    if not messages.empty or manifest is not None and not manifest.empty:
        diff = diff_manifests(manifest, approval_manifest(messages)) if not messages.empty else None
        if diff is None:
            changed = f"all {len(manifest)} approved messages removed"
        elif not diff.is_empty:
            changed = diff.describe()
    return ApprovalState(
        approved=not changed,
        approved_at=row["approved_at"],
        approved_by=str(row["approved_by"]),
        note=str(row.get("note") or ""),
        messages=int(row["message_count"]),
        changed=changed,
        **shown,
    )


def matrix(con: duckdb.DuckDBPyConnection, day: dt.date, top: int = 25) -> pd.DataFrame:
    """The date's matrix as segments x campaigns (treatment counts), biggest segments first."""
    m = _frame(
        con,
        "select micro_segment_id, campaign_id, customer_count - control_count as n "
        "from campaigns.campaign_matrix where as_of_date = $d",
        {"d": day},
    )
    if m.empty:
        return m
    grid = m.pivot_table(
        index="micro_segment_id", columns="campaign_id", values="n", aggfunc="sum", fill_value=0
    )
    grid["total"] = grid.sum(axis=1)
    return grid.sort_values("total", ascending=False).head(top)


def dry_run(con: duckdb.DuckDBPyConnection, day: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Messages per campaign and channel, and two rendered samples per campaign."""
    counts = _frame(
        con,
        "select campaign_id, channel, count(*) as messages from activations.outbound_messages "
        "where cast(as_of_date as date) = $d group by all order by messages desc",
        {"d": day},
    )
    samples = _frame(
        con,
        "select campaign_id, channel, customer_id, address, "
        "coalesce(json_extract_string(personalization, '$.text'), personalization) as text "
        "from activations.outbound_messages where cast(as_of_date as date) = $d "
        "qualify row_number() over (partition by campaign_id order by message_key) <= 2 "
        "order by campaign_id",
        {"d": day},
    )
    return counts, samples


def exclusions_by_reason(con: duckdb.DuckDBPyConnection, day: dt.date) -> pd.DataFrame:
    return _frame(
        con,
        "select reason, count(*) as exclusions, count(distinct customer_id) as customers "
        "from campaigns.exclusions where as_of_date = $d group by reason order by 2 desc",
        {"d": day},
    )


def quality_status(
    con: duckdb.DuckDBPyConnection, day: dt.date
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows each source suite saw for the date, and quarantined rows per table and reason."""
    counts = _frame(
        con,
        "select suite, max(row_count) as rows, max(recorded_at) as checked_at "
        "from quality.row_counts where as_of_date = $d group by suite order by suite",
        {"d": day},
    )
    parts = []
    for table in (
        "customers",
        "orders",
        "order_items",
        "events",
        "campaign_responses",
    ):
        name = f"quarantine.quarantine_{table}"
        if table_exists(con, name):
            q = _frame(
                con,
                f"select '{table}' as source, reason, bool_or(is_blocking) as blocking, "
                f"count(*) as rows from {name} group by reason",
            )
            parts.append(q)
    quarantine = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return counts, quarantine


# -- campaign ------------------------------------------------------------------------------


def campaign_results(con: duckdb.DuckDBPyConnection, campaign_id: str) -> pd.DataFrame:
    return _frame(
        con,
        "select * from activations.campaign_results where campaign_id = $c order by as_of_date",
        {"c": campaign_id},
    )


DRIVERS_SQL = """
with d as (
    select unnest(from_json(top_drivers, '[{"feature": "VARCHAR", "contribution": "DOUBLE"}]'))
        as driver
    from {source}
)
select driver.feature as feature, count(*) as customers,
       avg(driver.contribution) as mean_contribution
from d group by 1 order by customers desc, feature limit $n
"""


def campaign_drivers(
    con: duckdb.DuckDBPyConnection, campaign_id: str, day: dt.date, n: int = 8
) -> pd.DataFrame:
    """The churn model's top drivers among the customers the campaign treats on ``day``."""
    source = (
        "(select s.top_drivers from campaigns.campaign_assignments a join ml.customer_scores s "
        "on s.customer_id = a.customer_id and s.as_of_date = a.as_of_date "
        "where a.campaign_id = $c and a.as_of_date = $d and not a.is_control)"
    )
    return _frame(
        con, DRIVERS_SQL.replace("{source}", source), {"c": campaign_id, "d": day, "n": n}
    )


# -- customer ------------------------------------------------------------------------------


@dataclass
class CustomerView:
    customer_id: str
    profile: pd.DataFrame
    messages: pd.DataFrame
    exclusions: pd.DataFrame
    controls: pd.DataFrame
    scores: pd.DataFrame
    drivers: pd.DataFrame
    #: Messages other systems sent the customer (raw.external_contacts), by id or address.
    external: pd.DataFrame = field(default_factory=pd.DataFrame)


def customer(con: duckdb.DuckDBPyConnection, customer_id: str) -> CustomerView:
    p = {"c": customer_id}
    profile = _frame(
        con,
        "select customer_id, first_name, email, phone, country, created_at, is_email_opt_in, "
        "is_sms_opt_in from marts.dim_customers where customer_id = $c "
        "qualify row_number() over (order by customer_version desc) = 1",
        p,
    )
    messages = _frame(
        con,
        "select cast(o.as_of_date as date) as date, o.campaign_id, o.channel, o.address, "
        "coalesce(d.status, 'not sent yet') as status, d.sent_at, "
        "coalesce(json_extract_string(o.personalization, '$.text'), '') as text "
        "from activations.outbound_messages o left join activations.deliveries d "
        "using (message_key) where o.customer_id = $c order by date desc, o.campaign_id",
        p,
    )
    if messages.empty:
        messages = _frame(
            con,
            "select cast(as_of_date as date) as date, campaign_id, channel, address, "
            "'not sent yet' as status, null as sent_at, "
            "coalesce(json_extract_string(personalization, '$.text'), '') as text "
            "from activations.outbound_messages where customer_id = $c order by date desc",
            p,
        )
    exclusions = _frame(
        con,
        "select as_of_date as date, campaign_id, reason, taken_by from campaigns.exclusions "
        "where customer_id = $c order by date desc, campaign_id",
        p,
    )
    controls = _frame(
        con,
        "select as_of_date as date, campaign_id, locked_until from campaigns.campaign_assignments "
        "where customer_id = $c and is_control "
        # The global control group holds a member out of every marketing campaign at once.
        "union all select as_of_date, '(global control: every marketing campaign)', null "
        "from campaigns.global_control where customer_id = $c order by date desc",
        p,
    )
    if controls.empty:  # a warehouse without a global control group yet
        controls = _frame(
            con,
            "select as_of_date as date, campaign_id, locked_until "
            "from campaigns.campaign_assignments where customer_id = $c and is_control "
            "order by date desc",
            p,
        )
    scores = _frame(
        con,
        "select as_of_date as date, churn_probability, predicted_value_90d, clv_12m "
        "from ml.customer_scores where customer_id = $c order by date desc",
        p,
    )
    drivers = _frame(
        con,
        DRIVERS_SQL.replace(
            "{source}",
            "(select top_drivers from ml.customer_scores where customer_id = $c "
            "and top_drivers is not null "
            "qualify row_number() over (order by as_of_date desc) = 1)",
        ),
        {**p, "n": 10},
    )
    external = _frame(
        con,
        "select try_cast(x.sent_at as timestamp) as sent_at, x.department, x.message_type, "
        "x.channel, coalesce(x.campaign, x.subject) as campaign_or_subject "
        "from raw.external_contacts x where trim(x.customer_id) = $c "
        "or lower(trim(x.address)) in (select lower(trim(email)) from marts.dim_customers "
        "where customer_id = $c union select trim(phone) from marts.dim_customers "
        "where customer_id = $c) order by sent_at desc",
        p,
    )
    return CustomerView(
        customer_id, profile, messages, exclusions, controls, scores, drivers, external
    )


# -- programme -----------------------------------------------------------------------------

#: The table a global control group's results would be in (not built yet).
PROGRAMME_TABLE = "activations.programme_results"


def programme(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """Uplift of the whole programme against the global control; None while no such table."""
    if not table_exists(con, PROGRAMME_TABLE):
        return None
    return _frame(con, f"select * from {PROGRAMME_TABLE} order by as_of_date")


def approval_log(con: duckdb.DuckDBPyConnection, day: dt.date | None = None) -> pd.DataFrame:
    """Every approval and hold (of ``day``), newest first (audit.approvals)."""
    where = "" if day is None else "where as_of_date = $d"
    return _frame(
        con,
        "select recorded_at, action, actor, via, messages, changes, note, run_id "
        f"from {AUDIT_TABLE} {where} order by recorded_at desc",
        {} if day is None else {"d": day},
    )


def date_collisions(con: duckdb.DuckDBPyConnection, day: dt.date) -> pd.DataFrame | None:
    """The date's collision report (audit.collisions); None before the audit was built."""
    return read(
        con,
        "select customer_id, rule, messages, detail from audit.collisions "
        "where cast(as_of_date as date) = $d order by rule, customer_id",
        {"d": day},
    )
