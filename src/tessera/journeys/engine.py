"""One journey tick, set-based: ingest the queue, enter, exit, decide due steps, send, export.

Every stage is one SQL statement per trigger (or per tick) over the events since the trigger's
cursor and over the due steps, never a loop per event or customer. The rules are the matrix's,
called from where they live:

- conditions: ``tessera.campaigns.segmentation.condition_sql`` (the target groups' rule);
- control groups: ``tessera.campaigns.engine.control_sql`` (same salt, same buckets), with the
  trigger's ``campaign_id`` (``trigger_<id>``) as the campaign;
- consent: the segments' ``is_<channel>_reachable``; always-exclude: ``policies.always_exclude``
  (transactional triggers exempt, like campaigns);
- duration locks: the matrix's assignments locking the customer (``ignore_locks`` overrides);
- caps: ``policies.caps`` over the matrix's contacts plus the journeys' own ledger, counting
  calendar days in the shop's timezone (``timezone``, TESSERA_TIMEZONE) like the campaign dates;
- suppressions at send time, exactly once and providers: ``tessera.activations.sender``
  (``send_messages`` with ``SendTimeCheck``) over the journeys' ledger.

The attribution order of a step that is not sent: ``condition`` (its ``when``), ``control``,
``unknown_customer``, ``always_exclude``, ``no_consent``, ``duration_period``, ``cap``.
A step whose message key was recorded is committed: a rerun after a crash sends it through
the ledger (which sends nothing twice) instead of deciding again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from tessera.activations import ledger
from tessera.activations.ceilings import local_day
from tessera.activations.events import write_atomic_parquet
from tessera.activations.keys import message_key
from tessera.activations.providers.base import Provider
from tessera.activations.sender import RetryPolicy, send_messages
from tessera.activations.suppressions import (
    SUPPRESSION_COLUMNS,
    SendTimeCheck,
    email_sql,
    match_key_sql,
)
from tessera.campaigns.catalog import CHANNEL_PROVIDERS, Catalog, Condition, Trigger
from tessera.campaigns.engine import control_sql
from tessera.campaigns.segmentation import _literal, condition_sql
from tessera.journeys.paths import JourneyPaths
from tessera.journeys.snapshot import HISTORY_COLUMNS, Snapshot
from tessera.journeys.store import SCHEMA, ensure_schema
from tessera.warehouse.duckdb_io import local_date_sql

log = logging.getLogger(__name__)

#: Reasons a due step is not sent, in the order of attribution.
STEP_REASONS = (
    "condition",
    "control",
    "unknown_customer",
    "always_exclude",
    "no_consent",
    "duration_period",
    "cap",
)
_REACH = {
    "email": "is_email_reachable",
    "sms": "is_sms_reachable",
    "direct_mail": "is_direct_mail_reachable",
    "webhook": "is_webhook_reachable",
}


@dataclass
class TickReport:
    """What one tick did (the run's metadata)."""

    ingested: int = 0
    entries: dict[str, int] = field(default_factory=dict)
    exits: dict[str, int] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    suppressed: int = 0
    failed: int = 0
    next_due: dt.datetime | None = None


def _naive(ts: dt.datetime) -> dt.datetime:
    return ts.astimezone(dt.UTC).replace(tzinfo=None) if ts.tzinfo else ts


# --------------------------------------------------------------------------- 1. the queue


def ingest_queue(con: duckdb.DuckDBPyConnection, files: list[Path], now: dt.datetime) -> int:
    """Append the queue files not yet ingested to journeys.events (event ids de-duplicated)."""
    done = {r[0] for r in con.execute(f"select file from {SCHEMA}.ingested_files").fetchall()}
    new = [f for f in files if f.name not in done]
    if not new:
        return 0
    listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in new)
    con.execute("begin")
    try:
        n = con.execute(
            f"""
            insert into {SCHEMA}.events
            select coalesce((select max(seq) from {SCHEMA}.events), 0)
                       + row_number() over (order by received_at, filename, event_id),
                   event_id, source, event_type, customer_id, product_id, category,
                   occurred_at, received_at, in_stock, quantity, properties
            from (
                select *, row_number() over (partition by event_id order by filename) as rn
                from read_parquet([{listing}], filename = true, union_by_name = true)
            ) q
            where rn = 1
              and not exists (select 1 from {SCHEMA}.events e where e.event_id = q.event_id)
            """
        ).fetchall()[0][0]
        con.register(
            "_files",
            pd.DataFrame({"file": [f.name for f in new], "ingested_at": _naive(now)}),
        )
        con.execute(
            f"insert into {SCHEMA}.ingested_files select file, null, ingested_at from _files"
        )
        con.unregister("_files")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return int(n)


# --------------------------------------------------------------------------- 2. entries


def _conditions(where: Mapping[str, Condition]) -> str:
    parts = [p for attr, cond in where.items() for p in condition_sql(attr, cond)]
    return " and ".join(parts) if parts else "true"


def _event_columns(trigger: Trigger) -> str:
    """Event columns plus each ``properties.<name>`` a condition tests (numbers as doubles)."""
    extra = []
    for name, cond in trigger.entry.event_where.items():
        if name.startswith("properties."):
            path = "$." + name.split(".", 1)[1]
            value = f"json_extract_string(properties, '{path}')"
            numeric = any(v is not None for v in (cond.lt, cond.le, cond.gt, cond.ge))
            extra.append(f'{"try_cast(" + value + " as double)" if numeric else value} as "{name}"')
    return ", ".join(["*", *extra])


def _cursor(con: duckdb.DuckDBPyConnection, trigger_id: str) -> tuple[int, dt.date | None]:
    row = con.execute(
        f"select last_seq, last_segment_date from {SCHEMA}.cursors where trigger_id = ?",
        [trigger_id],
    ).fetchall()
    return (int(row[0][0] or 0), row[0][1]) if row else (0, None)


def _blocked_sql(trigger: Trigger) -> str:
    """An earlier entry with the same key that keeps this one out (the re-entry rule)."""
    if trigger.re_entry == "never":
        rule = "true"
    else:
        rule = (
            f"p.status = 'active' or p.entered_at > x.entered_at - to_days({trigger.re_entry_days})"
        )
    return (
        f"exists (select 1 from {SCHEMA}.entries p where p.trigger_id = x.trigger_id "
        f"and p.entry_key = x.entry_key and ({rule}))"
    )


def _key_sql(trigger: Trigger, alias: str) -> str:
    parts = [f"{alias}.customer_id"] + [f"coalesce({alias}.{k}, '')" for k in trigger.key_by]
    return " || '|' || ".join(parts)


def _insert_entries(con: duckdb.DuckDBPyConnection, trigger: Trigger, select: str, params) -> int:
    """``select`` yields candidate rows (trigger_id, customer_id, entry_key, event_id,
    product_id, entered_at, received_at, order_key); the first per key not blocked enters."""
    sql = f"""
            insert into {SCHEMA}.entries
            select md5(x.trigger_id || '|' || x.entry_key || '|' || coalesce(x.event_id, '')
                       || '|' || cast(x.entered_at as varchar)) as entry_id,
                   x.trigger_id, x.customer_id, x.entry_key, x.event_id, x.product_id,
                   x.entered_at, {control_sql("$salt", "$campaign", "x.customer_id", "$cut")},
                   'active', null, null, x.received_at
            from (
                select *, row_number() over (partition by entry_key order by order_key) as rn
                from ({select}) c
            ) x
            where x.rn = 1 and not {_blocked_sql(trigger)}
            """
    used = {k: v for k, v in params.items() if f"${k}" in sql}
    return int(con.execute(sql, used).fetchall()[0][0])


def enter(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, snap: Snapshot, now: dt.datetime
) -> dict[str, int]:
    """New entries of every enabled trigger since its cursor, and their scheduled steps."""
    counts: dict[str, int] = {}
    last_seq = con.execute(f"select coalesce(max(seq), 0) from {SCHEMA}.events").fetchall()[0][0]
    for t in catalog.triggers:
        if not t.enabled:
            continue
        cursor, last_segment = _cursor(con, t.id)
        params = {
            "tid": t.id,
            "salt": catalog.policies.control_salt,
            "campaign": t.campaign_id,
            "cut": round(t.control_share * 10_000),
            "cursor": cursor,
        }
        customer = _conditions(t.customer)
        e = t.entry
        n = 0
        if e.segment is not None:
            if snap.as_of is not None and (last_segment is None or snap.as_of > last_segment):
                group = _literal(e.segment)
                now_in = f"list_contains(coalesce(target_groups, []), {group})"
                was_in = f"list_contains(prev_target_groups, {group})"
                moved = (
                    f"{now_in} and prev_target_groups is not null and not {was_in}"
                    if e.segment_event == "enter"
                    else f"{was_in} and not {now_in}"
                )
                select = f"""
                    select $tid as trigger_id, customer_id, customer_id as entry_key,
                           cast(null as varchar) as event_id, cast(null as varchar) as product_id,
                           cast($taken as timestamp) as entered_at,
                           cast($taken as timestamp) as received_at, customer_id as order_key
                    from snap_customers where {moved} and {customer}
                """
                n = _insert_entries(con, t, select, {**params, "taken": _naive(snap.taken_at)})
                last_segment = snap.as_of
        elif e.event == "inventory":
            aud = e.audience
            assert aud is not None  # the catalog checks it
            kinds = ", ".join(_literal(k) for k in aud.event_types)
            select = f"""
                with ev as (select {_event_columns(t)} from {SCHEMA}.events
                            where seq > $cursor and event_type = 'inventory'),
                restock as (select * from ev where {_conditions(e.event_where)}),
                interest as (
                    select r.event_id, r.product_id, r.occurred_at, r.received_at, r.seq,
                           i.customer_id
                    from restock r
                    join {SCHEMA}.events i
                      on i.product_id = r.product_id and i.event_type in ({kinds})
                     and i.occurred_at < r.occurred_at
                     and i.occurred_at >= r.occurred_at - to_days({aud.days})
                     -- interest while out of stock: after the last out-of-stock event before
                     -- the restock (any interest in the window when none is known)
                     and i.occurred_at >= coalesce((
                         select max(o.occurred_at) from {SCHEMA}.events o
                         where o.event_type = 'inventory' and o.product_id = r.product_id
                           and not o.in_stock and o.occurred_at < r.occurred_at
                     ), i.occurred_at)
                )
                select distinct $tid as trigger_id, i.customer_id, {_key_sql(t, "i")} as entry_key,
                       i.event_id, i.product_id, i.occurred_at as entered_at, i.received_at,
                       i.seq as order_key
                from interest i left join snap_customers c on c.customer_id = i.customer_id
                where {customer}
            """
            n = _insert_entries(con, t, select, params)
        else:
            select = f"""
                with ev as (select {_event_columns(t)} from {SCHEMA}.events
                            where seq > $cursor and event_type = {_literal(e.event)}),
                hit as (select * from ev where {_conditions(e.event_where)})
                select $tid as trigger_id, h.customer_id, {_key_sh(t)} as entry_key, h.event_id,
                       h.product_id, h.occurred_at as entered_at, h.received_at,
                       h.seq as order_key
                from hit h left join snap_customers c on c.customer_id = h.customer_id
                where {customer}
            """
            n = _insert_entries(con, t, select, params)
        con.execute(
            f"insert or replace into {SCHEMA}.cursors values ($tid, $seq, $seg)",
            {"tid": t.id, "seq": last_seq, "seg": last_segment},
        )
        counts[t.id] = n
    _schedule_steps(con, catalog)
    return counts


def _key_sh(trigger: Trigger) -> str:
    return _key_sql(trigger, "h")


def _steps_frame(catalog: Catalog) -> pd.DataFrame:
    return pd.DataFrame(
        [
            (t.id, s.id, i, s.channel, s.wait_min)
            for t in catalog.triggers
            for i, s in enumerate(t.steps)
        ],
        columns=["trigger_id", "step_id", "step_index", "channel", "wait_min"],
    ).astype({"step_index": "int32", "wait_min": "int64"})


def _schedule_steps(con: duckdb.DuckDBPyConnection, catalog: Catalog) -> None:
    con.register("_steps_in", _steps_frame(catalog))
    try:
        con.execute(
            f"""
            insert into {SCHEMA}.steps
            select e.entry_id, s.step_id, s.step_index, e.trigger_id, e.customer_id, s.channel,
                   e.entered_at + to_minutes(s.wait_min), 'pending', null, null, null
            from {SCHEMA}.entries e join _steps_in s using (trigger_id)
            where e.status = 'active'
              and not exists (select 1 from {SCHEMA}.steps x where x.entry_id = e.entry_id)
            """
        )
    finally:
        con.unregister("_steps_in")


# --------------------------------------------------------------------------- 3. exits


def exit_entries(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, now: dt.datetime
) -> dict[str, int]:
    """End active entries whose exit condition holds (first reason: ordered, unsubscribed,
    entered_other); their pending steps that are not yet committed become ``exited``."""
    rules = pd.DataFrame(
        [
            (t.id, t.exit.ordered, t.exit.unsubscribed, t.exit.entered_other)
            for t in catalog.triggers
        ],
        columns=["trigger_id", "x_ordered", "x_unsubscribed", "x_other"],
    ).astype({"x_ordered": "bool", "x_unsubscribed": "bool", "x_other": "bool"})
    con.register("_exit_rules", rules)
    try:
        con.execute(
            f"""
            create or replace temp table _exits as
            select e.entry_id, e.trigger_id,
                   case
                     when r.x_ordered and exists (
                         select 1 from {SCHEMA}.events o where o.event_type = 'order'
                         and o.customer_id = e.customer_id and o.occurred_at > e.entered_at
                         and o.occurred_at <= $now) then 'ordered'
                     when r.x_unsubscribed and exists (
                         select 1 from snap_customers c join all_suppressions s
                           on s.match_key = {match_key_sql(email_sql("c.email"))}
                         where c.customer_id = e.customer_id
                           and s.reason in ('unsubscribed', 'spam_reported')) then 'unsubscribed'
                     when r.x_other and exists (
                         select 1 from {SCHEMA}.entries o where o.customer_id = e.customer_id
                         and o.trigger_id <> e.trigger_id and o.entered_at > e.entered_at
                         and o.entered_at <= $now) then 'entered_other'
                   end as reason
            from {SCHEMA}.entries e join _exit_rules r using (trigger_id)
            where e.status = 'active'
              and exists (select 1 from {SCHEMA}.steps s where s.entry_id = e.entry_id
                          and s.status = 'pending' and s.message_key is null)
            """,
            {"now": _naive(now)},
        )
        con.execute("delete from _exits where reason is null")
        con.execute(
            f"""
            update {SCHEMA}.steps s set status = 'exited', reason = x.reason, decided_at = $now
            from _exits x
            where s.entry_id = x.entry_id and s.status = 'pending' and s.message_key is null
            """,
            {"now": _naive(now)},
        )
        con.execute(
            f"""
            update {SCHEMA}.entries e set status = 'exited', exit_reason = x.reason, ended_at = $now
            from _exits x where e.entry_id = x.entry_id
              and not exists (select 1 from {SCHEMA}.steps s where s.entry_id = e.entry_id
                              and s.status = 'pending')
            """,
            {"now": _naive(now)},
        )
        rows = con.execute("select reason, count(*) from _exits group by all").fetchall()
    finally:
        con.unregister("_exit_rules")
    return {r: int(n) for r, n in rows}


# --------------------------------------------------------------------------- 4. due steps


def _triggers_frame(catalog: Catalog) -> pd.DataFrame:
    return pd.DataFrame(
        [
            (t.id, t.campaign_id, t.ignore_locks, t.transactional, t.lock_days)
            for t in catalog.triggers
        ],
        columns=["trigger_id", "campaign_id", "ignore_locks", "transactional", "lock_days"],
    ).astype({"ignore_locks": "bool", "transactional": "bool", "lock_days": "int64"})


def _caps_frame(catalog: Catalog) -> pd.DataFrame:
    return pd.DataFrame(
        [(c.id, ch, c.max_contacts, c.days) for c in catalog.policies.caps for ch in c.channels],
        columns=["cap_id", "channel", "max_contacts", "days"],
    ).astype({"max_contacts": "int64", "days": "int64"})


def decide_due(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, now: dt.datetime, timezone: str = "UTC"
) -> pd.DataFrame:
    """Every due, undecided step with ``reason`` (None: send) by the rules in STEP_REASONS.

    "Today" and the day of each journey contact are calendar days in ``timezone`` (the shop's):
    the daily matrix's contacts are campaign dates, which are days in that timezone too."""
    when = " ".join(
        f"when {_literal(t.id + '.' + s.id)} then ({_conditions(s.when)})"
        for t in catalog.triggers
        for s in t.steps
        if s.when
    )
    when_sql = f"(case s.trigger_id || '.' || s.step_id {when} else true end)" if when else "true"
    reach = " ".join(f"when '{ch}' then c.{col}" for ch, col in _REACH.items())
    con.register("_triggers_in", _triggers_frame(catalog))
    con.register("_caps_in", _caps_frame(catalog))
    out_statuses = ", ".join(f"'{s}'" for s in ledger.OUT_STATUSES)
    params = {"now": _naive(now), "today": local_day(now, timezone)}
    try:
        due_sql = f"""
            create or replace temp table _due as
            select s.entry_id, s.step_id, s.step_index, s.trigger_id, s.customer_id, s.channel,
                   s.due_at, e.product_id, e.received_at, e.is_control, t.campaign_id,
                   t.lock_days, t.ignore_locks, t.transactional,
                   c.customer_id is not null as known,
                   coalesce(c.is_always_excluded, false) as always_excluded,
                   coalesce(case s.channel {reach} end, false) as reachable,
                   coalesce({when_sql}, false) as when_ok,
                   c.email, c.phone, c.first_name
            from {SCHEMA}.steps s
            join {SCHEMA}.entries e using (entry_id)
            join _triggers_in t on t.trigger_id = s.trigger_id
            left join snap_customers c on c.customer_id = s.customer_id
            where s.status = 'pending' and s.message_key is null and e.status = 'active'
              and s.due_at <= $now
            """
        con.execute(due_sql, {"now": params["now"]})
        con.execute(
            f"""
            create or replace temp table _decided as
            with first_pass as (
                select d.*,
                    case
                      when not when_ok then 'condition'
                      when is_control then 'control'
                      when not known then 'unknown_customer'
                      when always_excluded and not transactional then 'always_exclude'
                      when not reachable then 'no_consent'
                      when not ignore_locks and exists (
                          select 1 from snap_history h where h.customer_id = d.customer_id
                          and cast(h.locked_until as date) > $today
                          and h.campaign_id <> d.campaign_id) then 'duration_period'
                    end as reason
                from _due d
            ),
            contacts as (
                select customer_id, channel, cast(as_of_date as date) as day
                from snap_history where not coalesce(is_control, false) and channel is not null
                union all
                select customer_id, channel,
                       {local_date_sql("coalesce(sent_at, created_at)", "$tz")}
                from activations.deliveries where status in ({out_statuses})
            ),
            -- contacts already made per (candidate, cap) in the cap's rolling window, plus the
            -- candidates of this tick ranked before it (due first): one more would pass the cap
            per_cap as (
                select f.entry_id, f.step_id, f.customer_id, f.due_at, k.cap_id,
                       k.max_contacts,
                       (select count(*) from contacts x
                        join _caps_in kc on kc.cap_id = k.cap_id and kc.channel = x.channel
                        where x.customer_id = f.customer_id
                          and x.day > $today - to_days(cast(k.days as integer))
                          and x.day <= $today) as used
                from first_pass f join _caps_in k on k.channel = f.channel
                where f.reason is null
            ),
            ranked as (
                select *, row_number() over (
                    partition by customer_id, cap_id order by due_at, entry_id, step_id) - 1
                    as before
                from per_cap
            ),
            capped as (
                select distinct entry_id, step_id from ranked where used + before >= max_contacts
            )
            select f.* replace (
                case when f.reason is null and c.entry_id is not null then 'cap'
                     else f.reason end as reason)
            from first_pass f left join capped c using (entry_id, step_id)
            """,
            {"today": params["today"], "tz": timezone},
        )
        return con.execute("select * from _decided order by due_at, entry_id, step_id").df()
    finally:
        con.unregister("_triggers_in")
        con.unregister("_caps_in")


def build_messages(
    decided: pd.DataFrame, catalog: Catalog, environment: str, today: dt.date
) -> pd.DataFrame:
    """Outbound rows (the sender's columns) for the steps to send."""
    from tessera.activations.suppressions import normalize_email, normalize_phone

    columns = [
        "message_key", "entry_id", "step_id", "as_of_date", "campaign_id", "customer_id",
        "channel", "provider", "address", "template_id", "duration_days", "personalization",
    ]  # fmt: skip
    if decided.empty:
        return pd.DataFrame(columns=columns)
    steps = pd.DataFrame(
        [
            {
                "trigger_id": t.id,
                "step_id": s.id,
                "campaign_id": t.campaign_id,
                "step_channel": s.channel,
                "provider": CHANNEL_PROVIDERS[s.channel],
                "template_id": catalog.provider_template_id(
                    s.template, CHANNEL_PROVIDERS[s.channel], environment
                ),
                "duration_days": t.lock_days,
                "offer": s.offer,
            }
            for t in catalog.triggers
            for s in t.steps
        ]
    )
    keys = ["trigger_id", "step_id"]
    overlap = [c for c in steps.columns if c in decided.columns and c not in keys]
    m = decided.drop(columns=overlap).merge(steps, on=keys, how="left", validate="many_to_one")
    m["channel"] = m["step_channel"]
    m["as_of_date"] = pd.Timestamp(today)
    email = m["email"].map(normalize_email)
    phone = m["phone"].map(normalize_phone)
    m["address"] = m["customer_id"].astype(object)
    m.loc[m["channel"] == "email", "address"] = email[m["channel"] == "email"]
    m.loc[m["channel"] == "sms", "address"] = phone[m["channel"] == "sms"]
    m["message_key"] = [
        message_key(f"{c}:{st}", cu, e, ch)
        for c, st, cu, e, ch in zip(
            m["campaign_id"], m["step_id"], m["customer_id"], m["entry_id"], m["channel"],
            strict=True,
        )
    ]  # fmt: skip
    personal = m[["first_name", "offer", "trigger_id", "step_id", "product_id"]].astype(object)
    personal = personal.where(personal.notna(), None)
    personal.columns = ["first_name", "offer", "trigger", "step", "product_id"]
    m["personalization"] = [
        json.dumps(row, sort_keys=True) for row in personal.to_dict(orient="records")
    ]
    return m[columns].reset_index(drop=True)


# --------------------------------------------------------------------------- 5. the tick


def _register_snapshot(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, snap: Snapshot, suppressions: pd.DataFrame
) -> None:
    customers = snap.customers.copy()
    needed = {a for t in catalog.triggers for a in t.customer} | {
        a for t in catalog.triggers for s in t.steps for a in s.when
    }
    for col in [*needed, "first_name", "target_groups", "prev_target_groups", "email", "phone",
                "is_always_excluded", *_REACH.values()]:  # fmt: skip
        if col not in customers.columns:
            customers[col] = None
    for col in ("target_groups", "prev_target_groups"):
        if customers[col].isna().all():
            customers[col] = pd.Series([None] * len(customers), dtype="object")
    con.register("_snap_customers_in", customers)
    con.execute(
        "create or replace temp table snap_customers as select * replace ("
        "cast(target_groups as varchar[]) as target_groups,"
        "cast(prev_target_groups as varchar[]) as prev_target_groups) from _snap_customers_in"
    )
    con.unregister("_snap_customers_in")
    history = snap.daily_history
    con.register("_snap_history_in", history if not history.empty else pd.DataFrame(
        {c: pd.Series(dtype="object") for c in HISTORY_COLUMNS}))  # fmt: skip
    con.execute(
        "create or replace temp table snap_history as select cast(as_of_date as date) as as_of_date,"
        " cast(customer_id as varchar) as customer_id, cast(campaign_id as varchar) as campaign_id,"
        " cast(channel as varchar) as channel, cast(is_control as boolean) as is_control,"
        " cast(locked_until as date) as locked_until from _snap_history_in"
    )
    con.unregister("_snap_history_in")
    sup = suppressions[SUPPRESSION_COLUMNS] if not suppressions.empty else pd.DataFrame(
        {c: pd.Series(dtype="object") for c in SUPPRESSION_COLUMNS})  # fmt: skip
    con.register("_sup_in", sup)
    con.execute(
        "create or replace temp table all_suppressions as select cast(match_key as varchar)"
        " as match_key, cast(reason as varchar) as reason, cast(channel as varchar) as channel"
        " from _sup_in"
    )
    con.unregister("_sup_in")


def _record_decisions(con: duckdb.DuckDBPyConnection, decided: pd.DataFrame, now) -> None:
    skipped = decided[decided["reason"].notna()][["entry_id", "step_id", "reason"]]
    if skipped.empty:
        return
    con.register("_skipped", skipped)
    try:
        con.execute(
            f"""
            update {SCHEMA}.steps s
            set status = case k.reason when 'control' then 'control' else 'skipped' end,
                reason = k.reason, decided_at = $now
            from _skipped k where s.entry_id = k.entry_id and s.step_id = k.step_id
            """,
            {"now": _naive(now)},
        )
    finally:
        con.unregister("_skipped")


def _commit_keys(con: duckdb.DuckDBPyConnection, messages: pd.DataFrame, now) -> None:
    """Record each step's message key before anything is sent: from now on it is committed."""
    if messages.empty:
        return
    con.register("_keys", messages[["entry_id", "step_id", "message_key"]])
    try:
        con.execute(
            f"""
            update {SCHEMA}.steps s set message_key = k.message_key, decided_at = $now
            from _keys k where s.entry_id = k.entry_id and s.step_id = k.step_id
            """,
            {"now": _naive(now)},
        )
    finally:
        con.unregister("_keys")


def committed_messages(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    environment: str,
    today: dt.date,
    timezone: str = "UTC",
) -> pd.DataFrame:
    """Committed steps the ledger has not settled (a crash between commit and outcome)."""
    rows = con.execute(
        f"""
        select s.entry_id, s.step_id, s.trigger_id, s.customer_id, e.product_id,
               c.email, c.phone, c.first_name,
               {local_date_sql("s.decided_at", "$tz")} as day
        from {SCHEMA}.steps s join {SCHEMA}.entries e using (entry_id)
        left join snap_customers c on c.customer_id = s.customer_id
        where s.status = 'pending' and s.message_key is not null
        """,
        {"tz": timezone},
    ).df()
    if rows.empty:
        return build_messages(rows, catalog, environment, today)
    frames = [
        build_messages(g, catalog, environment, day) for day, g in rows.groupby("day", sort=True)
    ]
    return pd.concat(frames, ignore_index=True)


def _settle_steps(con: duckdb.DuckDBPyConnection, now) -> None:
    """Steps take their message's ledger outcome (retryable failures stay pending)."""
    con.execute(
        f"""
        update {SCHEMA}.steps s
        set status = case
                when d.status in ('sent', 'suppressed', 'unknown') then d.status
                when d.status = 'failed' and not coalesce(d.is_retryable, false) then 'failed'
                else s.status end,
            reason = case when d.status in ('suppressed', 'failed', 'unknown') then d.error
                          else s.reason end
        from activations.deliveries d
        where s.message_key = d.message_key and s.status = 'pending'
        """
    )
    con.execute(
        f"""
        update {SCHEMA}.entries e set status = 'completed', ended_at = $now
        where e.status = 'active'
          and not exists (select 1 from {SCHEMA}.steps s where s.entry_id = e.entry_id
                          and s.status = 'pending')
          and exists (select 1 from {SCHEMA}.steps s where s.entry_id = e.entry_id)
        """,
        {"now": _naive(now)},
    )


def journey_contacts(con: duckdb.DuckDBPyConnection, timezone: str = "UTC") -> pd.DataFrame:
    """The journeys' contacts and locks as matrix history rows (HISTORY_COLUMNS), their days
    calendar days in ``timezone`` (the shop's, as the matrix's campaign dates are).

    A message that left (or may have: sent, sending, unknown) or a control decision is a
    contact on its day; an entry of a trigger with ``lock_days`` locks the customer from daily
    campaigns from its day for that many days (a row without a channel: no contact).
    """
    decided = local_date_sql("s.decided_at", "$tz")
    entered = local_date_sql("e.entered_at", "$tz")
    return con.execute(
        f"""
        select {decided} as as_of_date, s.customer_id,
               'trigger_' || s.trigger_id as campaign_id, s.channel,
               s.status = 'control' as is_control,
               {decided} as locked_until
        from {SCHEMA}.steps s
        left join activations.deliveries d on d.message_key = s.message_key
        where s.status = 'control'
           or (s.message_key is not null and coalesce(d.status, 'pending')
               in ('sent', 'sending', 'unknown'))
        union all
        select {entered}, e.customer_id, 'trigger_' || e.trigger_id,
               null, true, {entered} + to_days(cast(l.lock_days as integer))
        from {SCHEMA}.entries e join _locks_in l using (trigger_id)
        where l.lock_days > 0
        """,
        {"tz": timezone},
    ).df()


def export_contacts(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, path: Path, timezone: str = "UTC"
) -> int:
    locks = pd.DataFrame(
        [(t.id, t.lock_days) for t in catalog.triggers], columns=["trigger_id", "lock_days"]
    ).astype({"lock_days": "int64"})
    con.register("_locks_in", locks)
    try:
        frame = journey_contacts(con, timezone)
    finally:
        con.unregister("_locks_in")
    write_atomic_parquet(frame, path.parent, path.name)
    return len(frame)


def read_journey_contacts(data_dir: Path) -> pd.DataFrame | None:
    """The journeys' contacts and locks for the daily matrix (None before the first tick)."""
    path = JourneyPaths.of(data_dir).contacts_path
    return pd.read_parquet(path) if path.exists() else None


def run_tick(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    snap: Snapshot,
    *,
    paths: JourneyPaths,
    providers: Mapping[str, Provider],
    now: dt.datetime,
    environment: str = "default",
    policy: RetryPolicy | None = None,
    fresh_suppressions: Callable[[], pd.DataFrame] | None = None,
    kill_switch: bool = False,
    crash_after_commit: bool = False,
    timezone: str = "UTC",
) -> TickReport:
    """One tick: ingest, enter, exit, decide due steps and send them, export contacts.

    ``fresh_suppressions`` returns what landed since the snapshot (provider events, manual
    entries); it is read again before each window of sends. ``crash_after_commit`` stops after
    the message keys are committed (tests of a crashed tick). ``timezone`` is the shop's
    (TESSERA_TIMEZONE): the caps' and locks' days are its calendar days.
    """
    from tessera.journeys.intake import queue_files

    ensure_schema(con)
    report = TickReport()
    report.ingested = ingest_queue(con, queue_files(paths.root.parent), now)

    def suppressions_now() -> pd.DataFrame:
        extra = fresh_suppressions() if fresh_suppressions is not None else pd.DataFrame()
        frames = [f for f in (snap.suppressions, extra) if f is not None and not f.empty]
        if not frames:
            return pd.DataFrame(columns=SUPPRESSION_COLUMNS)
        return pd.concat([f[SUPPRESSION_COLUMNS] for f in frames], ignore_index=True)

    _register_snapshot(con, catalog, snap, suppressions_now())
    report.entries = enter(con, catalog, snap, now)
    report.exits = exit_entries(con, catalog, now)
    today = local_day(now, timezone)
    decided = decide_due(con, catalog, now, timezone)
    report.decisions = decided["reason"].fillna("send").value_counts().to_dict()
    _record_decisions(con, decided, now)
    fresh = build_messages(decided[decided["reason"].isna()], catalog, environment, today)
    _commit_keys(con, fresh, now)
    if crash_after_commit:
        raise RuntimeError("simulated crash after the message keys were committed")
    messages = committed_messages(con, catalog, environment, today, timezone)
    if not messages.empty:
        if kill_switch:
            log.warning("journeys: kill switch on, %d messages stay committed", len(messages))
        else:
            send = send_messages(
                con,
                messages,
                providers,
                policy or RetryPolicy(),
                recheck=SendTimeCheck(suppressions_now),
            )
            report.sent = send.sent
            report.suppressed = len(send.suppressed)
            report.failed = send.failed + send.failed_retryable
    _settle_steps(con, now)
    export_contacts(con, catalog, paths.contacts_path, timezone)
    nxt = con.execute(
        f"select min(due_at) from {SCHEMA}.steps where status = 'pending'"
    ).fetchall()[0][0]
    report.next_due = nxt
    paths.root.mkdir(parents=True, exist_ok=True)
    tmp = paths.next_due_path.with_suffix(".tmp")
    tmp.write_text(nxt.isoformat() if nxt is not None else "", encoding="utf-8")
    tmp.replace(paths.next_due_path)
    return report


def landed_suppressions(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, snap: Snapshot
) -> Callable[[], pd.DataFrame]:
    """What the event endpoint landed since the snapshot (unsubscribes, bounces, spam reports),
    as suppressions, read again at every call (before each window of sends).

    Opt-outs and older events are in the snapshot's list; the addresses come from the
    journeys' ledger (the message an event is about) and the snapshot's customers.
    """
    from tessera.activations.events import landed_event_files
    from tessera.activations.suppressions import SUPPRESSING_EVENTS, build_suppressions

    since = pd.Timestamp(snap.taken_at).timestamp()
    customers = snap.customers.reindex(columns=["customer_id", "email", "phone"]).assign(
        is_email_opt_in=True, is_sms_opt_in=True
    )

    def load() -> pd.DataFrame:
        files = [p for p in landed_event_files(landing_dir) if p.stat().st_mtime >= since]
        if not files:
            return pd.DataFrame(columns=SUPPRESSION_COLUMNS)
        events = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
        events = events[events["event"].isin(SUPPRESSING_EVENTS)].assign(source="event_endpoint")
        if events.empty:
            return pd.DataFrame(columns=SUPPRESSION_COLUMNS)
        sent = con.execute("select message_key, channel, address from activations.deliveries").df()
        return build_suppressions(events, customers, None, sent)

    return load
