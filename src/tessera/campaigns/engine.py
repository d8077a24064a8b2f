"""The daily campaign matrix: eligibility, contact policy, duration locks, arbitration, control groups.

Set-based: one DuckDB statement chain per date over all customers and campaigns. Rules, applied to
each (customer, campaign) pair whose campaign is active on D and whose target groups contain the
customer; the first rule that excludes a pair names its reason (the attribution order):

1. ``always_exclude``  customer is in a ``policies.always_exclude`` group (transactional campaigns
   are exempt);
2. ``global_control``  customer is in the ``policies.global_control`` group (transactional
   campaigns are exempt; see tessera.campaigns.global_control);
3. ``no_consent``      none of the campaign's channels can reach the customer;
4. ``duration_period`` customer is locked by an earlier assignment (``locked_until > D``) and the
   campaign does not ``ignore_locks``; ``taken_by`` is the campaign holding the lock;
5. ``cap``             every reachable channel of the campaign is at a frequency cap;
6. ``pair_rule``       a ``policies.pair_rules`` rule forbids the campaign given the customer's
   contacts in the rule's window; ``rule_id`` is the first such rule in catalog order and
   ``taken_by`` the latest contact that triggers it (none for ``only_with``);
7. ``lower_priority``  another eligible campaign ranks higher; ``taken_by`` is the winner;
8. ``capacity``        the winner's channel is full for D (lowest rank dropped first; inside a
   campaign by a per-date salted hash); when the day's contacts fit, nothing is cut.

Ranking is priority (higher wins), then ``tie_break`` (lower wins, unset last), then the earlier
``start``, then ``campaign_id``. The constraints commute; only the attribution follows the order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pandas as pd
import pyarrow as pa

from tessera.campaigns import global_control
from tessera.campaigns.catalog import Catalog
from tessera.campaigns.errors import MatrixInputError

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
EXCLUSION_COLUMNS = ["as_of_date", "customer_id", "campaign_id", "reason", "taken_by", "rule_id"]
MATRIX_COLUMNS = [
    "as_of_date",
    "micro_segment_id",
    "campaign_id",
    "customer_count",
    "control_count",
]
HISTORY_COLUMNS = [
    "as_of_date",
    "customer_id",
    "campaign_id",
    "channel",
    "is_control",
    "locked_until",
]
REASONS = (
    "always_exclude",
    "global_control",
    "no_consent",
    "duration_period",
    "cap",
    "pair_rule",
    "lower_priority",
    "capacity",
)


def control_sql(salt: str, campaign_id: str, customer_id: str, cut: str) -> str:
    """Whether a customer is in a campaign's control group: the salted hash into
    CONTROL_BUCKETS buckets below ``cut`` (SQL expressions). The matrix's statement below
    writes the same expression; the journeys call this one (a test keeps the two equal)."""
    return (
        f"md5_number_lower({salt} || ':control:' || {campaign_id} || ':' || {customer_id})"
        f" % {CONTROL_BUCKETS} < {cut}"
    )


@dataclass(frozen=True)
class MatrixResult:
    """The three outputs of one matrix date, as Arrow tables (``.to_pandas()`` for frames)."""

    assignments: pa.Table
    exclusions: pa.Table
    matrix: pa.Table


HISTORY_SCHEMA = pa.schema(
    [
        ("as_of_date", pa.date32()),
        ("customer_id", pa.string()),
        ("campaign_id", pa.string()),
        ("channel", pa.string()),
        ("is_control", pa.bool_()),
        ("locked_until", pa.date32()),
    ]
)


def empty_history() -> pa.Table:
    """A history with no rows (the first matrix date)."""
    return HISTORY_SCHEMA.empty_table()


_CHANNEL_BIT = {"email": 0, "sms": 1, "direct_mail": 2, "webhook": 3}


def _rank_key(c) -> tuple:
    # priority higher wins, then tie_break (lower wins, unset last), earlier start, campaign id
    return (-c.priority, c.tie_break is None, c.tie_break or 0, c.start, c.id)


def _campaign_frames(catalog: Catalog, as_of: dt.date) -> dict[str, pd.DataFrame]:
    active = sorted(catalog.active_campaigns(as_of), key=_rank_key)
    groups = sorted(
        {g for c in active for g in c.target_groups} | set(catalog.policies.always_exclude)
    )
    gix = {g: i for i, g in enumerate(groups)}

    def channel_at(c, i: int) -> int | None:
        return _CHANNEL_BIT[c.channels[i]] if i < len(c.channels) else None

    camps = pd.DataFrame(
        {
            # kix is the rank order itself: a lower kix always wins arbitration
            "kix": pd.Series(range(len(active)), dtype="int32"),
            "campaign_id": pd.Series([c.id for c in active], dtype="object"),
            "priority": pd.Series([c.priority for c in active], dtype="int64"),
            "duration_days": pd.Series([c.duration_days for c in active], dtype="int32"),
            "control_cut": pd.Series(
                [round(c.control_share * CONTROL_BUCKETS) for c in active], dtype="int32"
            ),
            "ignore_locks": pd.Series([c.ignore_locks for c in active], dtype="bool"),
            "transactional": pd.Series([c.transactional for c in active], dtype="bool"),
            "channel_mask": pd.Series(
                [sum(1 << _CHANNEL_BIT[ch] for ch in c.channels) for c in active], dtype="int32"
            ),
            **{
                f"ch{i}": pd.Series([channel_at(c, i) for c in active], dtype="Int32")
                for i in range(4)
            },
        }
    )
    groups_frame = pd.DataFrame(
        {
            "target_group": pd.Series(groups, dtype="object"),
            "gix": pd.Series(range(len(groups)), dtype="int32"),
        }
    )
    camp_groups = pd.DataFrame(
        {
            "kix": pd.Series(
                [k for k, c in enumerate(active) for _ in c.target_groups], dtype="int32"
            ),
            "gix": pd.Series([gix[g] for c in active for g in c.target_groups], dtype="int32"),
        }
    )
    caps = pd.DataFrame(
        [
            (cap.id, _CHANNEL_BIT[ch], ch, cap.max_contacts, cap.days)
            for cap in catalog.policies.caps
            for ch in cap.channels
        ],
        columns=["cap_id", "chx", "channel", "max_contacts", "days"],
    ).astype(
        {
            "cap_id": "object",
            "chx": "int32",
            "channel": "object",
            "max_contacts": "int64",
            "days": "int64",
        }
    )
    capacity = pd.DataFrame(
        [(_CHANNEL_BIT[ch], n) for ch, n in catalog.policies.capacity.items()],
        columns=["chx", "capacity"],
    ).astype({"chx": "int32", "capacity": "int64"})
    always = pd.DataFrame(
        {"gix": pd.Series([gix[g] for g in catalog.policies.always_exclude], dtype="int32")}
    )
    channels = pd.DataFrame(
        {
            "chx": pd.Series(list(_CHANNEL_BIT.values()), dtype="int32"),
            "channel": pd.Series(list(_CHANNEL_BIT), dtype="object"),
        }
    )
    rules = catalog.policies.pair_rules
    pair_rules = pd.DataFrame(
        {
            "rix": pd.Series(range(len(rules)), dtype="int32"),
            "rule_id": pd.Series([r.id for r in rules], dtype="object"),
            "kind": pd.Series([r.kind for r in rules], dtype="object"),
            "a": pd.Series([r.a for r in rules], dtype="object"),
            "b": pd.Series([r.b for r in rules], dtype="object"),
            "days": pd.Series([r.days for r in rules], dtype="int32"),
            "offer": pd.Series([r.offer for r in rules], dtype="object"),
            "max_contacts": pd.Series([r.max_contacts for r in rules], dtype="Int64"),
            "min_offers": pd.Series([r.min_offers for r in rules], dtype="Int64"),
        }
    )
    with_offer = [c for c in catalog.campaigns if c.offer]
    offers = pd.DataFrame(
        {
            "campaign_id": pd.Series([c.id for c in with_offer], dtype="object"),
            "offer": pd.Series([c.offer for c in with_offer], dtype="object"),
        }
    )
    return {
        "pair_rules_in": pair_rules,
        "offers_in": offers,
        "camps": camps,
        "groups_in": groups_frame,
        "camp_groups": camp_groups,
        "caps": caps,
        "capacity_in": capacity,
        "always_groups": always,
        "channels_in": channels,
    }


# Customers and campaigns become dense integers first (cix, kix; kix is the rank order), channels
# bits of a mask: every wide step then works on integers, and strings come back only at the end.
_SQL = """
create or replace temp table members as
select cast(row_number() over (order by customer_id) as integer) as cix,
       cast(customer_id as varchar) as customer_id, micro_segment_id, target_groups,
       cast((case when is_email_reachable then 1 else 0 end)
          | (case when is_sms_reachable then 2 else 0 end)
          | (case when is_direct_mail_reachable then 4 else 0 end)
          | (case when is_webhook_reachable then 8 else 0 end) as integer) as reach_mask
from membership_in;

create or replace temp table hist as
select m.cix, cast(h.campaign_id as varchar) as campaign_id, c.chx,
       cast(h.as_of_date as date) as as_of_date, cast(h.is_control as boolean) as is_control,
       cast(h.locked_until as date) as locked_until
from history_in h
join members m on m.customer_id = cast(h.customer_id as varchar)
left join channels_in c on c.channel = cast(h.channel as varchar)
where cast(h.as_of_date as date) < $as_of;

create or replace temp table mg as
select t.cix, g.gix
from (select cix, unnest(target_groups) as target_group from members) t
join groups_in g using (target_group);

create or replace temp table cand as
select distinct mg.cix, cg.kix from mg join camp_groups cg using (gix);

create or replace temp table excluded as
select distinct cix from mg join always_groups using (gix);

-- the global control group (none when the catalog has no policies.global_control: cut 0)
create or replace temp table gc as
select cix from members where {gc_bucket} < $gc_cut;

-- the lock reported as taken_by: the one ending last; among locks ending the same day, the
-- latest assigned, then the campaign id (arg_max alone picks an arbitrary one of tied rows)
create or replace temp table locks as
select cix, max(locked_until) as locked_until,
       first(campaign_id order by locked_until desc, as_of_date desc, campaign_id) as lock_campaign
from hist where locked_until > $as_of
group by cix;

-- a cap counts contacts (not control rows) on its channels in the rolling window [D-days+1, D];
-- today adds at most one contact, so a customer at max-1 may still receive one today
create or replace temp table capped as
with use as (
    select h.cix, c.cap_id, any_value(c.max_contacts) as max_contacts, count(*) as n
    from hist h join caps c on h.chx = c.chx
    where not h.is_control
      and h.as_of_date >= cast($as_of - to_days(cast(c.days - 1 as integer)) as date)
    group by h.cix, c.cap_id
)
select u.cix, cast(bit_or(1 << c.chx) as integer) as capped_mask
from use u join caps c using (cap_id)
where u.n >= u.max_contacts
group by u.cix;

-- pair rules: contacts (not control rows) on every channel inside each rule's window
-- [D-days+1, D-1]; a rule forbids a candidate from history alone (one campaign per day)
create or replace temp table pair_window as
select r.rix, h.cix, h.campaign_id, h.as_of_date, o.offer
from pair_rules_in r
join hist h on not h.is_control
 and h.as_of_date >= cast($as_of - to_days(cast(r.days - 1 as integer)) as date)
left join offers_in o on o.campaign_id = h.campaign_id;

create or replace temp table pair_blocked as
with c as (
    select s.cix, s.kix, k.campaign_id, o.offer
    from cand s join camps k using (kix) left join offers_in o on o.campaign_id = k.campaign_id
),
offer_use as (
    select rix, cix, offer, count(*) as n, max(as_of_date) as last_date,
           first(campaign_id order by as_of_date desc, campaign_id) as taker
    from pair_window where offer is not null group by all
),
offer_count as (
    select rix, cix, count(distinct offer) as n_offers from pair_window group by all
),
hits as (
    select c.cix, c.kix, r.rix, w.campaign_id as taker, w.as_of_date
    from c join pair_rules_in r on r.kind = 'never_with' and c.campaign_id in (r.a, r.b)
    join pair_window w on w.rix = r.rix and w.cix = c.cix
     and w.campaign_id = case when c.campaign_id = r.a then r.b else r.a end
    union all
    select c.cix, c.kix, r.rix, w.campaign_id, w.as_of_date
    from c join pair_rules_in r on r.kind = 'never_followed_by' and c.campaign_id = r.b
    join pair_window w on w.rix = r.rix and w.cix = c.cix and w.campaign_id = r.a
    union all
    select c.cix, c.kix, r.rix, null, null
    from c join pair_rules_in r on r.kind = 'only_with' and c.campaign_id = r.b
    where not exists (
        select 1 from pair_window w where w.rix = r.rix and w.cix = c.cix and w.campaign_id = r.a
    )
    union all
    select c.cix, c.kix, r.rix, u.taker, u.last_date
    from c join pair_rules_in r on r.kind = 'max_duplicates'
     and c.offer is not null and coalesce(r.offer, c.offer) = c.offer
    join offer_use u on u.rix = r.rix and u.cix = c.cix and u.offer = c.offer
    where u.n >= r.max_contacts
    union all
    select c.cix, c.kix, r.rix, u.taker, u.last_date
    from c join pair_rules_in r on r.kind = 'min_unique_offers' and c.offer is not null
    join offer_use u on u.rix = r.rix and u.cix = c.cix and u.offer = c.offer
    join offer_count n on n.rix = r.rix and n.cix = c.cix
    where n.n_offers < r.min_offers
),
first_rule as (
    select cix, kix, min(rix) as rix from hits group by all
)
select f.cix, f.kix, f.rix,
       first(h.taker order by h.as_of_date desc nulls last, h.taker) as pair_taker
from first_rule f join hits h using (cix, kix, rix)
group by all;

create or replace temp table scored as
with base as (
    select c.cix, c.kix, k.duration_days, k.control_cut, k.transactional, k.ignore_locks,
           m.reach_mask, m.reach_mask & k.channel_mask as reachable_mask,
           m.reach_mask & ~coalesce(cp.capped_mask, 0) as usable_mask,
           k.ch0, k.ch1, k.ch2, k.ch3,
           x.cix is not null as is_excluded, l.cix is not null as is_locked, l.lock_campaign,
           g.cix is not null as is_global_control, pb.rix as pair_rix, pb.pair_taker
    from cand c
    join camps k using (kix)
    join members m using (cix)
    left join excluded x using (cix)
    left join gc g using (cix)
    left join pair_blocked pb using (cix, kix)
    left join locks l using (cix)
    left join capped cp using (cix)
)
select cix, kix, duration_days, control_cut,
       case
           when (usable_mask >> ch0) & 1 = 1 then ch0
           when (usable_mask >> ch1) & 1 = 1 then ch1
           when (usable_mask >> ch2) & 1 = 1 then ch2
           when (usable_mask >> ch3) & 1 = 1 then ch3
       end as chx,
       case
           when is_excluded and not transactional then 1
           when is_global_control and not transactional then 6
           when reachable_mask = 0 then 2
           when is_locked and not ignore_locks then 3
           when (usable_mask >> ch0) & 1 = 0 and coalesce((usable_mask >> ch1) & 1, 0) = 0
            and coalesce((usable_mask >> ch2) & 1, 0) = 0
            and coalesce((usable_mask >> ch3) & 1, 0) = 0 then 4
           when pair_rix is not null then 5
           else 0
       end as reason_code,
       lock_campaign, pair_rix, pair_taker
from base;

create or replace temp table winners as
select cix, min(kix) as kix, arg_min(chx, kix) as chx,
       arg_min(duration_days, kix) as duration_days, arg_min(control_cut, kix) as control_cut
from scored where reason_code = 0 group by cix;

create or replace temp table chosen as
select w.cix, w.kix, w.chx, w.duration_days,
       md5_number_lower($salt || ':control:' || k.campaign_id || ':' || m.customer_id)
           % 10000 < w.control_cut as is_control,
       md5_number_lower($salt || ':capacity:' || cast($as_of as varchar) || ':' || m.customer_id)
           as capacity_order
from winners w
join camps k using (kix)
join members m using (cix);

-- capacity counts contacts only. When the channel's contacts fit, nothing is cut (controls
-- included). Otherwise rows are kept in rank order, then by a per-date salted hash inside a
-- campaign, while fewer than `capacity` contacts precede them, so control rows are cut at the
-- same rank as treated ones
create or replace temp table kept as
select c.*,
       case when cap.chx is null then true
            when sum(case when c.is_control then 0 else 1 end) over (partition by c.chx)
                 <= cap.capacity then true
            else coalesce(sum(case when c.is_control then 0 else 1 end) over (
                partition by c.chx
                order by c.kix asc, c.capacity_order asc, c.cix asc
                rows between unbounded preceding and 1 preceding), 0) < cap.capacity
       end as is_kept
from chosen c left join capacity_in cap using (chx);
""".replace("{gc_bucket}", global_control.SQL_BUCKET)

_REASON_CASE = (
    "case reason_code when 1 then 'always_exclude' when 2 then 'no_consent'"
    " when 3 then 'duration_period' when 4 then 'cap' when 5 then 'pair_rule'"
    " when 6 then 'global_control' end"
)


def assign_campaigns(
    membership: pd.DataFrame | pa.Table,
    catalog: Catalog,
    as_of: dt.date,
    history: pd.DataFrame | pa.Table | None = None,
) -> MatrixResult:
    """Build the matrix of ``as_of`` from that date's membership and earlier assignments.

    ``history`` holds earlier assignments (``HISTORY_COLUMNS``; rows on or after ``as_of`` are
    ignored) for duration locks and caps. Same inputs give the same rows, in the same order.
    """
    columns = (
        membership.column_names if isinstance(membership, pa.Table) else list(membership.columns)
    )
    missing = [
        c for c in ("customer_id", "micro_segment_id", "target_groups", *_REACH) if c not in columns
    ]
    if missing:
        raise MatrixInputError(f"membership for {as_of}: missing column(s) {', '.join(missing)}")
    history = empty_history() if history is None else _as_history(history)
    con = duckdb.connect()
    try:
        con.register("membership_in", membership)
        con.register("history_in", history)
        for name, frame in _campaign_frames(catalog, as_of).items():
            con.register(name, frame)
        gc = catalog.policies.global_control
        params = {
            "as_of": as_of,
            "salt": catalog.policies.control_salt,
            "gc_salt": gc.salt if gc is not None else "",
            "gc_cut": global_control.cut(gc) if gc is not None else 0,
        }
        for statement in _statements(_SQL):
            con.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement})
        return _collect(con, as_of)
    finally:
        con.close()


_REACH = (
    "is_email_reachable",
    "is_sms_reachable",
    "is_direct_mail_reachable",
    "is_webhook_reachable",
)


def _as_history(history: pd.DataFrame | pa.Table) -> pa.Table:
    """Earlier assignments in the history schema (dates as dates, whatever the input types)."""
    if isinstance(history, pd.DataFrame):
        frame = history[HISTORY_COLUMNS].copy()
        for col in ("as_of_date", "locked_until"):
            frame[col] = pd.to_datetime(frame[col]).dt.date
        return pa.Table.from_pandas(frame, schema=HISTORY_SCHEMA, preserve_index=False)
    return history.select(HISTORY_COLUMNS).cast(HISTORY_SCHEMA)


def _statements(sql: str) -> list[str]:
    out = []
    for chunk in sql.split(";\n"):
        body = "\n".join(ln for ln in chunk.splitlines() if not ln.strip().startswith("--"))
        if body.strip():
            out.append(body.strip())
    return out


def _collect(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> MatrixResult:
    assignments = con.sql(
        """
        select cast($as_of as date) as as_of_date, m.customer_id, k.campaign_id, ch.channel,
               m.micro_segment_id, c.is_control, k.priority, c.duration_days,
               cast($as_of + to_days(c.duration_days) as date) as locked_until
        from kept c
        join members m using (cix)
        join camps k using (kix)
        join channels_in ch using (chx)
        where c.is_kept
        order by c.cix
        """,
        params={"as_of": as_of},
    ).to_arrow_table()
    exclusions = con.sql(
        f"""
        select cast($as_of as date) as as_of_date, m.customer_id, k.campaign_id, x.reason,
               x.taken_by, cast(r.rule_id as varchar) as rule_id
        from (
            select cix, kix, {_REASON_CASE} as reason,
                   case when reason_code = 3 then lock_campaign
                        when reason_code = 5 then pair_taker end as taken_by,
                   case when reason_code = 5 then pair_rix end as rix
            from scored where reason_code > 0
            union all
            select s.cix, s.kix, 'lower_priority', w.campaign_id, null
            from scored s
            join winners wi using (cix)
            join camps w on w.kix = wi.kix
            where s.reason_code = 0 and s.kix <> wi.kix
            union all
            select cix, kix, 'capacity', null, null from kept where not is_kept
        ) x
        join members m using (cix)
        join camps k using (kix)
        left join pair_rules_in r on r.rix = x.rix
        order by x.cix, x.kix
        """,
        params={"as_of": as_of},
    ).to_arrow_table()
    con.register("assignments_out", assignments)
    matrix = matrix_from_assignments(con, "assignments_out")
    return MatrixResult(assignments=assignments, exclusions=exclusions, matrix=matrix)


def matrix_from_assignments(con: duckdb.DuckDBPyConnection, relation: str) -> pa.Table:
    """Micro-segment x date x campaign counts (controls included in ``customer_count``)."""
    return con.sql(
        f"""
        select as_of_date, micro_segment_id, campaign_id, count(*) as customer_count,
               count(*) filter (where is_control) as control_count
        from {relation}
        group by all
        order by as_of_date, customer_count desc, micro_segment_id, campaign_id
        """
    ).to_arrow_table()


def run_dates(
    membership_by_date: dict[dt.date, pd.DataFrame],
    catalog_by_date: Catalog | dict[dt.date, Catalog],
    history: pd.DataFrame | None = None,
) -> dict[dt.date, MatrixResult]:
    """Run consecutive dates in order, each seeing the assignments of the dates before it."""
    results: dict[dt.date, MatrixResult] = {}
    hist = empty_history() if history is None else _as_history(history)
    for day in sorted(membership_by_date):
        catalog = catalog_by_date[day] if isinstance(catalog_by_date, dict) else catalog_by_date
        result = assign_campaigns(membership_by_date[day], catalog, day, hist)
        results[day] = result
        if result.assignments.num_rows:
            hist = pa.concat_tables([hist, _as_history(result.assignments)])
    return results
