"""The daily campaign matrix: eligibility, contact policy, duration locks, arbitration, control groups.

Set-based: one DuckDB statement chain per date over all customers and campaigns. Rules, applied to
each (customer, campaign) pair whose campaign is active on D and whose target groups contain the
customer; the first rule that excludes a pair names its reason (the attribution order):

1. ``always_exclude``  customer is in a ``policies.always_exclude`` group (transactional campaigns
   are exempt);
2. ``no_consent``      none of the campaign's channels can reach the customer;
3. ``duration_period`` customer is locked by an earlier assignment (``locked_until > D``) and the
   campaign does not ``ignore_locks``; ``taken_by`` is the campaign holding the lock;
4. ``cap``             every reachable channel of the campaign is at a frequency cap;
5. ``lower_priority``  another eligible campaign ranks higher; ``taken_by`` is the winner;
6. ``capacity``        the winner's channel is full for D (lowest rank dropped first).

Ranking is priority (higher wins), then ``tie_break`` (lower wins, unset last), then the earlier
``start``, then ``campaign_id``. The constraints commute; only the attribution follows the order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pandas as pd

from campaigns.catalog import Catalog
from campaigns.errors import MatrixInputError

CONTROL_BUCKETS = 10_000

ASSIGNMENT_COLUMNS = [
    "as_of_date",
    "customer_id",
    "campaign_id",
    "channel",
    "micro_segment_id",
    "is_control",
    "priority",
    "duration_days",
    "locked_until",
]
EXCLUSION_COLUMNS = ["as_of_date", "customer_id", "campaign_id", "reason", "taken_by"]
MATRIX_COLUMNS = ["as_of_date", "micro_segment_id", "campaign_id", "customer_count", "control_count"]
HISTORY_COLUMNS = ["as_of_date", "customer_id", "campaign_id", "channel", "is_control", "locked_until"]
REASONS = (
    "always_exclude",
    "no_consent",
    "duration_period",
    "cap",
    "lower_priority",
    "capacity",
)


@dataclass(frozen=True)
class MatrixResult:
    """The three outputs of one matrix date."""

    assignments: pd.DataFrame
    exclusions: pd.DataFrame
    matrix: pd.DataFrame


def empty_history() -> pd.DataFrame:
    """A history frame with no rows (the first matrix date)."""
    return pd.DataFrame(
        {
            "as_of_date": pd.Series([], dtype="datetime64[us]"),
            "customer_id": pd.Series([], dtype="object"),
            "campaign_id": pd.Series([], dtype="object"),
            "channel": pd.Series([], dtype="object"),
            "is_control": pd.Series([], dtype="bool"),
            "locked_until": pd.Series([], dtype="datetime64[us]"),
        }
    )


def _campaign_frames(catalog: Catalog, as_of: dt.date) -> dict[str, pd.DataFrame]:
    active = catalog.active_campaigns(as_of)
    camps = pd.DataFrame(
        {
            "campaign_id": [c.id for c in active],
            "priority": pd.Series([c.priority for c in active], dtype="int64"),
            "tie_break": pd.Series([c.tie_break for c in active], dtype="Int64"),
            "start_date": pd.Series([c.start for c in active], dtype="object"),
            "duration_days": pd.Series([c.duration_days for c in active], dtype="int64"),
            "control_cut": pd.Series(
                [round(c.control_share * CONTROL_BUCKETS) for c in active], dtype="int64"
            ),
            "ignore_locks": pd.Series([c.ignore_locks for c in active], dtype="bool"),
            "transactional": pd.Series([c.transactional for c in active], dtype="bool"),
        }
    )
    camp_groups = pd.DataFrame(
        [(c.id, g) for c in active for g in c.target_groups],
        columns=["campaign_id", "target_group"],
        dtype="object",
    )
    camp_channels = pd.DataFrame(
        [(c.id, i, ch) for c in active for i, ch in enumerate(c.channels)],
        columns=["campaign_id", "pos", "channel"],
    ).astype({"pos": "int64", "campaign_id": "object", "channel": "object"})
    caps = pd.DataFrame(
        [
            (cap.id, ch, cap.max_contacts, cap.days)
            for cap in catalog.policies.caps
            for ch in cap.channels
        ],
        columns=["cap_id", "channel", "max_contacts", "days"],
    ).astype({"max_contacts": "int64", "days": "int64", "cap_id": "object", "channel": "object"})
    capacity = pd.DataFrame(
        list(catalog.policies.capacity.items()), columns=["channel", "capacity"]
    ).astype({"channel": "object", "capacity": "int64"})
    always = pd.DataFrame({"target_group": list(catalog.policies.always_exclude)}, dtype="object")
    return {
        "camps": camps,
        "camp_groups": camp_groups,
        "camp_channels": camp_channels,
        "caps": caps,
        "capacity_in": capacity,
        "always_groups": always,
    }


_SQL = """
create or replace temp table members as
select customer_id, micro_segment_id, target_groups, is_email_reachable, is_sms_reachable,
       is_direct_mail_reachable, is_webhook_reachable
from membership_in;

create or replace temp table hist as
select cast(customer_id as varchar) as customer_id, cast(campaign_id as varchar) as campaign_id,
       cast(channel as varchar) as channel, cast(as_of_date as date) as as_of_date,
       cast(is_control as boolean) as is_control, cast(locked_until as date) as locked_until
from history_in
where cast(as_of_date as date) < $as_of;

create or replace temp table mg as
select customer_id, unnest(target_groups) as target_group from members;

create or replace temp table cand as
select distinct mg.customer_id, cg.campaign_id
from mg join camp_groups cg using (target_group);

create or replace temp table locks as
select customer_id, max(locked_until) as locked_until,
       arg_max(campaign_id, locked_until) as lock_campaign
from hist where locked_until > $as_of
group by customer_id;

-- a cap counts contacts (not control rows) on its channels in the rolling window [D-days+1, D];
-- today adds at most one contact, so a customer at max-1 may still receive one today
create or replace temp table capped as
with use as (
    select h.customer_id, c.cap_id, any_value(c.max_contacts) as max_contacts, count(*) as n
    from hist h join caps c on h.channel = c.channel
    where not h.is_control
      and h.as_of_date >= cast($as_of - to_days(cast(c.days - 1 as integer)) as date)
    group by h.customer_id, c.cap_id
)
select distinct u.customer_id, c.channel
from use u join caps c using (cap_id)
where u.n >= u.max_contacts;

create or replace temp table ch_choice as
with opts as (
    select cand.customer_id, cand.campaign_id, ch.channel, ch.pos,
           case ch.channel
               when 'email' then m.is_email_reachable
               when 'sms' then m.is_sms_reachable
               when 'direct_mail' then m.is_direct_mail_reachable
               when 'webhook' then m.is_webhook_reachable
           end as reachable,
           cp.customer_id is not null as is_capped
    from cand
    join camp_channels ch using (campaign_id)
    join members m using (customer_id)
    left join capped cp on cp.customer_id = cand.customer_id and cp.channel = ch.channel
)
select customer_id, campaign_id, bool_or(coalesce(reachable, false)) as any_reachable,
       arg_min(channel, pos) filter (where coalesce(reachable, false) and not is_capped)
           as channel
from opts
group by customer_id, campaign_id;

create or replace temp table scored as
select a.customer_id, a.campaign_id, a.channel, c.priority, c.tie_break, c.start_date,
       c.duration_days, c.control_cut,
       case
           when ax.customer_id is not null and not c.transactional then 'always_exclude'
           when not coalesce(a.any_reachable, false) then 'no_consent'
           when l.customer_id is not null and not c.ignore_locks then 'duration_period'
           when a.channel is null then 'cap'
       end as reason,
       case when l.customer_id is not null and not c.ignore_locks then l.lock_campaign end
           as lock_campaign
from ch_choice a
join camps c using (campaign_id)
left join (select distinct customer_id from mg join always_groups using (target_group)) ax
    using (customer_id)
left join locks l using (customer_id);

create or replace temp table ranked as
select *,
       row_number() over (partition by customer_id
           order by priority desc, tie_break asc nulls last, start_date asc, campaign_id asc) as rn
from scored where reason is null;

create or replace temp table winners as
select r.customer_id, r.campaign_id, r.channel, r.priority, r.tie_break, r.start_date,
       r.duration_days,
       md5_number_lower($salt || ':control:' || r.campaign_id || ':' || r.customer_id)
           % 10000 < r.control_cut as is_control,
       md5_number_lower($salt || ':capacity:' || cast($as_of as varchar) || ':' || r.customer_id)
           as capacity_order
from ranked r where rn = 1;

-- capacity counts contacts only; rows are kept in rank order while fewer than `capacity`
-- contacts precede them, so control rows are cut at the same rank as treated ones
create or replace temp table kept as
select w.*,
       case when cap.channel is null then true
            else coalesce(sum(case when w.is_control then 0 else 1 end) over (
                partition by w.channel
                order by w.priority desc, w.tie_break asc nulls last, w.start_date asc,
                         w.campaign_id asc, w.capacity_order asc, w.customer_id asc
                rows between unbounded preceding and 1 preceding), 0) < cap.capacity
       end as is_kept
from winners w left join capacity_in cap on cap.channel = w.channel;
"""


def assign_campaigns(
    membership: pd.DataFrame,
    catalog: Catalog,
    as_of: dt.date,
    history: pd.DataFrame | None = None,
) -> MatrixResult:
    """Build the matrix of ``as_of`` from that date's membership and earlier assignments.

    ``history`` holds earlier assignments (``HISTORY_COLUMNS``; rows on or after ``as_of`` are
    ignored) for duration locks and caps. Same inputs give the same rows, in the same order.
    """
    missing = [
        c
        for c in ("customer_id", "micro_segment_id", "target_groups", "is_email_reachable")
        if c not in membership.columns
    ]
    if missing:
        raise MatrixInputError(f"membership for {as_of}: missing column(s) {', '.join(missing)}")
    if history is None:
        history = empty_history()
    con = duckdb.connect()
    try:
        con.register("membership_in", membership)
        con.register("history_in", history[HISTORY_COLUMNS])
        for name, frame in _campaign_frames(catalog, as_of).items():
            con.register(name, frame)
        params = {"as_of": as_of, "salt": catalog.policies.control_salt}
        for statement in _statements(_SQL):
            con.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement})
        return _collect(con, as_of)
    finally:
        con.close()


def _statements(sql: str) -> list[str]:
    out = []
    for chunk in sql.split(";\n"):
        body = "\n".join(ln for ln in chunk.splitlines() if not ln.strip().startswith("--"))
        if body.strip():
            out.append(body.strip())
    return out


def _collect(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> MatrixResult:
    assignments = con.execute(
        """
        select cast($as_of as date) as as_of_date, k.customer_id, k.campaign_id, k.channel,
               m.micro_segment_id, k.is_control, k.priority, k.duration_days,
               cast($as_of + to_days(cast(k.duration_days as integer)) as date) as locked_until
        from kept k join members m using (customer_id)
        where k.is_kept
        order by k.customer_id
        """,
        {"as_of": as_of},
    ).df()
    exclusions = con.execute(
        """
        select cast($as_of as date) as as_of_date, customer_id, campaign_id, reason, taken_by
        from (
            select customer_id, campaign_id, reason,
                   case when reason = 'duration_period' then lock_campaign end as taken_by
            from scored where reason is not null
            union all
            select r.customer_id, r.campaign_id, 'lower_priority', w.campaign_id
            from ranked r join ranked w on w.customer_id = r.customer_id and w.rn = 1
            where r.rn > 1
            union all
            select customer_id, campaign_id, 'capacity', null from kept where not is_kept
        )
        order by customer_id, campaign_id
        """,
        {"as_of": as_of},
    ).df()
    con.register("assignments_out", assignments)
    matrix = matrix_from_assignments(con, "assignments_out")
    return MatrixResult(assignments=assignments, exclusions=exclusions, matrix=matrix)


def matrix_from_assignments(con: duckdb.DuckDBPyConnection, relation: str) -> pd.DataFrame:
    """Micro-segment x date x campaign counts (controls included in ``customer_count``)."""
    return con.execute(
        f"""
        select as_of_date, micro_segment_id, campaign_id, count(*) as customer_count,
               count(*) filter (where is_control) as control_count
        from {relation}
        group by all
        order by as_of_date, customer_count desc, micro_segment_id, campaign_id
        """
    ).df()


def run_dates(
    membership_by_date: dict[dt.date, pd.DataFrame],
    catalog_by_date: Catalog | dict[dt.date, Catalog],
    history: pd.DataFrame | None = None,
) -> dict[dt.date, MatrixResult]:
    """Run consecutive dates in order, each seeing the assignments of the dates before it."""
    results: dict[dt.date, MatrixResult] = {}
    hist = empty_history() if history is None else history[HISTORY_COLUMNS]
    for day in sorted(membership_by_date):
        catalog = (
            catalog_by_date[day] if isinstance(catalog_by_date, dict) else catalog_by_date
        )
        result = assign_campaigns(membership_by_date[day], catalog, day, hist)
        results[day] = result
        if len(result.assignments):
            hist = pd.concat([hist, result.assignments[HISTORY_COLUMNS]], ignore_index=True)
    return results
