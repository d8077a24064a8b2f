"""One audit of every message to every customer: Tessera's own and other systems', per date,
and the collisions among them (too many messages, several departments, conflicting offers)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pandas as pd

from tessera.warehouse.duckdb_io import replace_dates, table_exists

AUDIT_TABLE = "audit.messages"
COLLISIONS_TABLE = "audit.collisions"
#: A customer with more than this many messages on one date is a collision.
MAX_MESSAGES_PER_DAY = 2

CAMPAIGN_COLUMNS = ["campaign_id", "owner", "name", "offer", "transactional", "message_type"]
#: A customer who gets one of each on one date (whichever system sent them) is a collision.
BROADCAST, ONBOARDING = "broadcast", "onboarding"


def campaign_frame(catalog) -> pd.DataFrame:  # noqa: ANN001 - a tessera.campaigns Catalog
    """The catalog facts the audit needs per campaign."""
    return pd.DataFrame(
        [
            {
                "campaign_id": c.id,
                "owner": c.owner,
                "name": c.display_name,
                "offer": c.offer,
                "transactional": c.transactional,
                "message_type": c.message_type,
            }
            for c in catalog.campaigns
        ],
        columns=CAMPAIGN_COLUMNS,
    )


_TESSERA_SQL = """
select cast($d as date) as as_of_date, 'tessera' as source, o.customer_id, o.channel,
       coalesce(c.owner, 'marketing') as department, coalesce(c.owner, 'marketing') as owner,
       coalesce(c.message_type,
                case when c.transactional then 'transactional' else 'campaign' end)
           as message_type,
       o.campaign_id, coalesce(c.name, o.campaign_id) as subject, c.offer,
       cast(null as timestamp) as sent_at, o.message_key
from activations.outbound_messages o left join _campaigns c using (campaign_id)
where cast(o.as_of_date as date) = $d
"""

_EXTERNAL_SQL = """
with by_address as (
    select distinct lower(trim(email)) as address, customer_id from marts.dim_customers
    where email is not null
    union
    select distinct trim(phone), customer_id from marts.dim_customers where phone is not null
)
select cast($d as date) as as_of_date, 'external' as source,
       coalesce(nullif(trim(x.customer_id), ''), a.customer_id) as customer_id,
       lower(trim(x.channel)) as channel, x.department, x.department as owner, x.message_type,
       x.campaign as campaign_id, coalesce(x.subject, x.campaign) as subject,
       cast(null as varchar) as offer, try_cast(x.sent_at as timestamp) as sent_at,
       cast(null as varchar) as message_key
from raw.external_contacts x
left join by_address a
  on nullif(trim(x.customer_id), '') is null and a.address = lower(trim(x.address))
where cast(try_cast(x.sent_at as timestamp) as date) = $d
"""


@dataclass(frozen=True)
class AuditDay:
    messages: pd.DataFrame
    collisions: pd.DataFrame

    @property
    def by_rule(self) -> dict[str, int]:
        if self.collisions.empty:
            return {}
        return self.collisions.groupby("rule")["customer_id"].nunique().astype(int).to_dict()


def audit_messages(
    con: duckdb.DuckDBPyConnection, day: dt.date, campaigns: pd.DataFrame
) -> pd.DataFrame:
    """Every message of ``day``: Tessera's outbound messages (department and owner from the
    catalog) and the external contacts sent that day (customer matched by id or address)."""
    parts = []
    con.register("_campaigns", campaigns[CAMPAIGN_COLUMNS])
    try:
        if table_exists(con, "activations.outbound_messages"):
            parts.append(con.execute(_TESSERA_SQL, {"d": day}).df())
    finally:
        con.unregister("_campaigns")
    if table_exists(con, "raw.external_contacts") and table_exists(con, "marts.dim_customers"):
        parts.append(con.execute(_EXTERNAL_SQL, {"d": day}).df())
    parts = [p for p in parts if not p.empty]
    if not parts:
        return empty_messages()
    return pd.concat(parts, ignore_index=True)


def empty_messages() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "as_of_date": pd.Series(dtype="datetime64[us]"),
            **{
                c: pd.Series(dtype="string")
                for c in (
                    "source",
                    "customer_id",
                    "channel",
                    "department",
                    "owner",
                    "message_type",
                    "campaign_id",
                    "subject",
                    "offer",
                )
            },
            "sent_at": pd.Series(dtype="datetime64[us]"),
            "message_key": pd.Series(dtype="string"),
        }
    )


def collisions(
    messages: pd.DataFrame, day: dt.date, max_messages: int = MAX_MESSAGES_PER_DAY
) -> pd.DataFrame:
    """Customers whose messages of ``day`` collide, one row per customer and rule:
    `too_many` (more than ``max_messages``), `departments` (from two or more departments),
    `conflicting_offers` (two or more different offers), `broadcast_and_onboarding` (a
    broadcast and an onboarding message, by their message type)."""
    columns = ["as_of_date", "customer_id", "rule", "messages", "detail"]
    known = messages[messages["customer_id"].notna()]
    if known.empty:
        return pd.DataFrame(
            {
                "as_of_date": pd.Series(dtype="datetime64[us]"),
                **{c: pd.Series(dtype="string") for c in ("customer_id", "rule", "detail")},
                "messages": pd.Series(dtype="int64"),
            }
        )[columns]
    g = known.groupby("customer_id")
    kinds = (
        known["message_type"].astype("string").str.lower()
        if "message_type" in known.columns
        else pd.Series("", index=known.index, dtype="string")
    )
    per = pd.DataFrame(
        {
            "messages": g.size(),
            "departments": g["department"].nunique(),
            "offers": g["offer"].nunique(),
            "broadcast": (kinds == BROADCAST).fillna(False).groupby(known["customer_id"]).any(),
            "onboarding": (kinds == ONBOARDING).fillna(False).groupby(known["customer_id"]).any(),
        }
    )
    # The lists are spelled out only for the customers they describe (a Python join per
    # customer of the day cost seconds at 100k).
    flagged = known[
        known["customer_id"].isin(per.index[(per["departments"] > 1) | (per["offers"] > 1)])
    ]
    for column, name in (("department", "department_list"), ("offer", "offer_list")):
        listed = flagged.groupby("customer_id")[column].agg(
            lambda s: ", ".join(sorted(set(s.dropna())))
        )
        per[name] = listed.reindex(per.index).fillna("")
    per = per.reset_index()
    rules = [
        ("too_many", per["messages"] > max_messages, per["messages"].astype(str) + " messages"),
        ("departments", per["departments"] > 1, per["department_list"]),
        ("conflicting_offers", per["offers"] > 1, per["offer_list"]),
        (
            "broadcast_and_onboarding",
            per["broadcast"].fillna(False).astype(bool)
            & per["onboarding"].fillna(False).astype(bool),
            pd.Series(f"{BROADCAST} and {ONBOARDING} on one day", index=per.index),
        ),
    ]
    out = pd.concat(
        [
            pd.DataFrame(
                {
                    "customer_id": per.loc[mask, "customer_id"],
                    "rule": rule,
                    "messages": per.loc[mask, "messages"],
                    "detail": detail[mask],
                }
            )
            for rule, mask, detail in rules
        ],
        ignore_index=True,
    )
    out.insert(0, "as_of_date", pd.Timestamp(day))
    return out.astype({"messages": "int64"})[columns].sort_values(
        ["rule", "customer_id"], ignore_index=True
    )


def build_audit(con: duckdb.DuckDBPyConnection, day: dt.date, campaigns: pd.DataFrame) -> AuditDay:
    """Write audit.messages and audit.collisions for ``day`` (replacing the date's rows)."""
    messages = audit_messages(con, day, campaigns)
    messages["as_of_date"] = pd.Timestamp(day)
    found = collisions(messages, day)
    replace_dates(con, [(AUDIT_TABLE, messages), (COLLISIONS_TABLE, found)], day)
    return AuditDay(messages=messages, collisions=found)
