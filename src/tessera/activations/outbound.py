"""Outbound messages for one date: treated assignments x contacts x consent x suppressions.

Set-based in DuckDB: every non-control assignment becomes either one message (with its
deterministic key and rendered personalization) or one excluded row with the reason.
Exclusion reasons are attributed in this documented order (first match wins):
unknown_customer, no_contact, invalid_contact, no_consent, unsubscribed, bounced, spam_reported,
opted_out, do_not_contact, duplicate_address.

Suppressions match on the normalised address (activations/suppressions.py), so they reach every
customer record that shares it; ``duplicate_address`` keeps one message per channel and address
on a date across campaigns (highest priority, then campaign id, then customer id).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import duckdb
import pandas as pd
import pyarrow as pa

from tessera.activations.content import fill_missing_content
from tessera.activations.keys import key_sql
from tessera.activations.providers.sendgrid_rules import address_ok_sql
from tessera.activations.suppressions import (
    REASON_ORDER,
    address_sql,
    build_suppressions,
    match_key_sql,
)
from tessera.warehouse.duckdb_io import empty_frame

#: Which provider serves each channel unless configured otherwise.
DEFAULT_CHANNEL_PROVIDERS: dict[str, str] = {
    "email": "sendgrid",
    "sms": "twilio",
    "webhook": "webhook",
    "direct_mail": "file",
}

MESSAGE_COLUMNS = [
    "as_of_date",
    "message_key",
    "campaign_id",
    "customer_id",
    "channel",
    "provider",
    "micro_segment_id",
    "priority",
    "duration_days",
    "address",
    "template_id",
    "personalization",
]
EXCLUDED_COLUMNS = ["as_of_date", "message_key", "campaign_id", "customer_id", "channel", "reason"]
#: The two tables' types on a date without rows (what DuckDB gives them on a date with rows).
_TYPES = {"as_of_date": pa.timestamp("us"), "priority": pa.int32(), "duration_days": pa.int32()}
MESSAGE_SCHEMA = pa.schema([(c, _TYPES.get(c, pa.string())) for c in MESSAGE_COLUMNS])
EXCLUDED_SCHEMA = pa.schema([(c, _TYPES.get(c, pa.string())) for c in EXCLUDED_COLUMNS])

#: SMS needs an international (E.164) number: a national one ('0151 ...') cannot be matched
#: against a suppression written internationally, and Twilio would read it in its own country.
_PHONE_RE = r"^\+[1-9][0-9]{6,14}$"


def _ensure(df: pd.DataFrame, columns: Mapping[str, object]) -> pd.DataFrame:
    """Optional columns absent from an input get a neutral default."""
    df = df.copy()
    for name, default in columns.items():
        if name not in df.columns:
            df[name] = default
    return df


def build_outbound(
    as_of: dt.date,
    assignments: pd.DataFrame,
    customers: pd.DataFrame,
    features: pd.DataFrame,
    scores: pd.DataFrame,
    suppressions: pd.DataFrame,
    content: pd.DataFrame,
    channel_providers: Mapping[str, str] | None = None,
    manual: pd.DataFrame | None = None,
    sent: pd.DataFrame | None = None,
    customer_records: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(messages, excluded)`` for campaign date ``as_of``.

    ``suppressions`` holds provider events (message_id, customer_id, channel, event,
    occurred_at); only events before ``as_of`` count (the send-time check sees the later ones).
    Opt-outs of every customer record and ``manual`` do-not-contact entries always count;
    ``sent`` (message_key, channel, address) resolves an event to the address its message went
    to. ``customer_records`` (default ``customers``) are every customer record whose opt-outs
    suppress their addresses (e.g. staged earlier and later versions as well as the current
    ones). Control assignments never become messages.
    """
    providers = {**DEFAULT_CHANNEL_PROVIDERS, **(channel_providers or {})}
    con = duckdb.connect()
    try:
        a = assignments[assignments["as_of_date"].astype(str).str[:10] == as_of.isoformat()]
        a = a[~a["is_control"].astype(bool)]
        con.register("a", _ensure(a, {"micro_segment_id": None, "priority": 0, "duration_days": 0}))
        con.register(
            "c",
            _ensure(
                customers,
                {
                    "first_name": None,
                    "is_email_valid": True,
                    "is_phone_valid": True,
                    "is_email_opt_in": False,
                    "is_sms_opt_in": False,
                },
            ),
        )
        con.register(
            "f", _ensure(features, {"top_category": None, "top_viewed_category_30d": None})
        )
        con.register("s", _ensure(scores, {"top_drivers": None}))
        events = _ensure(suppressions, {"channel": None, "message_id": None, "source": "events"})
        con.register(
            "sup",
            build_suppressions(
                events,
                customers if customer_records is None else customer_records,
                manual,
                sent,
                before=pd.Timestamp(dt.datetime.combine(as_of, dt.time())),
            ),
        )
        con.register(
            "content",
            fill_missing_content(content, a[["campaign_id", "channel"]]) if len(a) else content,
        )
        con.register(
            "prov", pd.DataFrame({"channel": list(providers), "provider": list(providers.values())})
        )
        ranks = " ".join(f"when '{r}' then {i + 1}" for i, r in enumerate(REASON_ORDER))
        reasons = "[" + ", ".join(f"'{r}'" for r in REASON_ORDER) + "]"
        key = key_sql("a.campaign_id", "a.customer_id", "cast(a.as_of_date as date)", "a.channel")
        con.execute(
            f"""
            create temp table base as
            with joined as (
                select
                    cast(a.as_of_date as date) as as_of_date,
                    {key} as message_key,
                    a.campaign_id, a.customer_id, a.channel,
                    coalesce(prov.provider, a.channel) as provider,
                    a.micro_segment_id, cast(a.priority as integer) as priority,
                    cast(a.duration_days as integer) as duration_days,
                    c.customer_id is not null as is_known,
                    {address_sql("a.channel", "c.email", "c.phone", "a.customer_id")} as address,
                    case a.channel
                        when 'email' then coalesce(c.is_email_valid, true)
                        when 'sms' then coalesce(c.is_phone_valid, true)
                        else true end as is_valid_flag,
                    case a.channel
                        when 'email' then coalesce(c.is_email_opt_in, false)
                        when 'sms' then coalesce(c.is_sms_opt_in, false)
                        else true end as is_consented,
                    coalesce(nullif(trim(c.first_name), ''), 'there') as first_name,
                    coalesce(f.top_category, f.top_viewed_category_30d, 'our new arrivals')
                        as top_category,
                    try(list_transform(
                        from_json(s.top_drivers, '[{{"feature":"VARCHAR","contribution":"DOUBLE"}}]')[1:3],
                        lambda x: x.feature)) as risk_drivers,
                    content.template_id, content.offer, content.text
                from a
                left join c on c.customer_id = a.customer_id
                left join f on f.customer_id = a.customer_id
                left join s on s.customer_id = a.customer_id
                left join content on content.campaign_id = a.campaign_id
                                 and content.channel = a.channel
                left join prov on prov.channel = a.channel
            ),
            hits as (
                -- The first suppression reason (documented order) of the message's address.
                select j.message_key, min(case x.reason {ranks} end) as rank
                from joined j
                join sup x on x.match_key = {match_key_sql("j.address")}
                          and x.channel in (j.channel, '*')
                group by j.message_key
            ),
            flagged as (
                select j.*, list_extract({reasons}, h.rank) as suppression
                from joined j left join hits h using (message_key)
            )
            select *,
                case
                    when not is_known then 'unknown_customer'
                    when address is null or address = '' then 'no_contact'
                    when not is_valid_flag
                      or (channel = 'email' and not {address_ok_sql("address")})
                      or (channel = 'sms' and not regexp_full_match(address, '{_PHONE_RE}'))
                      then 'invalid_contact'
                    when not is_consented then 'no_consent'
                    else suppression
                end as pre_reason
            from flagged
            """,
        )
        con.execute(
            """
            create temp table ranked as
            select *,
                case when pre_reason is null and row_number() over (
                        partition by channel, pre_reason is null, address
                        order by priority desc, campaign_id, customer_id) > 1
                     then 'duplicate_address' else pre_reason end as reason
            from base
            """
        )
        messages = con.execute(
            """
            select as_of_date, message_key, campaign_id, customer_id, channel, provider,
                   micro_segment_id, priority, duration_days, address, template_id,
                   to_json(struct_pack(
                       first_name := first_name,
                       top_category := top_category,
                       offer := offer,
                       campaign_id := campaign_id,
                       risk_drivers := coalesce(risk_drivers, []::varchar[]),
                       text := replace(replace(replace(text, '{first_name}', first_name),
                                '{offer}', offer), '{top_category}', top_category)
                   ))::varchar as personalization
            from ranked where reason is null
            order by campaign_id, channel, customer_id
            """
        ).df()
        excluded = con.execute(
            """
            select as_of_date, message_key, campaign_id, customer_id, channel, reason
            from ranked where reason is not null
            order by campaign_id, channel, customer_id
            """
        ).df()
    finally:
        con.close()
    messages = empty_frame(MESSAGE_SCHEMA) if messages.empty else messages[MESSAGE_COLUMNS]
    excluded = empty_frame(EXCLUDED_SCHEMA) if excluded.empty else excluded[EXCLUDED_COLUMNS]
    return messages, excluded


def summarize(messages: pd.DataFrame, excluded: pd.DataFrame) -> pd.DataFrame:
    """Counts per campaign and channel: messages to send and exclusions by reason."""
    sends = messages.groupby(["campaign_id", "channel"]).size().rename("to_send")
    if excluded.empty:
        return sends.reset_index()
    excl = excluded.pivot_table(
        index=["campaign_id", "channel"], columns="reason", values="customer_id", aggfunc="count"
    )
    out = pd.concat([sends, excl], axis=1).fillna(0).astype(int).reset_index()
    return out.sort_values(["campaign_id", "channel"]).reset_index(drop=True)
