"""Invariants of a matrix date, checked independently of the engine (pandas, not its SQL)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from tessera.campaigns.catalog import Catalog


def _frame(table) -> pd.DataFrame:
    return table if isinstance(table, pd.DataFrame) else table.to_pandas()


def _dates(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).dt.date


def duplicate_assignments(assignments) -> int:
    """Customers with more than one campaign on the date (must be 0)."""
    a = _frame(assignments)
    return int(a.duplicated(["as_of_date", "customer_id"]).sum())


def lock_violations(assignments, history, catalog: Catalog, as_of: dt.date) -> int:
    """Customers given a campaign that does not ignore locks while an earlier lock holds."""
    a, h = _frame(assignments), _frame(history)
    if a.empty or h.empty:
        return 0
    h = h[(_dates(h["as_of_date"]) < as_of) & (_dates(h["locked_until"]) > as_of)]
    ignores = {c.id for c in catalog.campaigns if c.ignore_locks}
    new = a[~a["campaign_id"].isin(ignores)]
    return int(new["customer_id"].isin(set(h["customer_id"])).sum())


def cap_violations(assignments, history, catalog: Catalog, as_of: dt.date) -> int:
    """(customer, cap) pairs whose contacts in the rolling window exceed the cap."""
    a, h = _frame(assignments), _frame(history)
    contacts = pd.concat(
        [
            h[["as_of_date", "customer_id", "channel", "is_control"]],
            a[["as_of_date", "customer_id", "channel", "is_control"]],
        ]
    )
    contacts = contacts[~contacts["is_control"].astype(bool)]
    day = _dates(contacts["as_of_date"])
    bad = 0
    for cap in catalog.policies.caps:
        start = as_of - dt.timedelta(days=cap.days - 1)
        window = contacts[(day >= start) & (day <= as_of) & contacts["channel"].isin(cap.channels)]
        bad += int((window.groupby("customer_id").size() > cap.max_contacts).sum())
    return bad


def capacity_violations(assignments, catalog: Catalog) -> int:
    """Channels whose contacts on the date exceed their daily capacity."""
    a = _frame(assignments)
    sent = a[~a["is_control"].astype(bool)].groupby("channel").size()
    return int(
        sum(
            1
            for channel, limit in catalog.policies.capacity.items()
            if sent.get(channel, 0) > limit
        )
    )


def pair_rule_violations(assignments, history, catalog: Catalog, as_of: dt.date) -> int:
    """Assignments on ``as_of`` that break a pair rule given the earlier contacts (must be 0).

    Written from the rule definitions (docs/catalog.md), independently of the engine's SQL:
    contacts are non-control rows of any channel dated in [as_of - days + 1, as_of - 1].
    """
    a, h = _frame(assignments), _frame(history)
    rules = catalog.policies.pair_rules
    if not rules or a.empty:
        return 0
    offer_of = {c.id: c.offer for c in catalog.campaigns if c.offer}
    longest = max(r.days for r in rules)
    contacts: dict[str, list[tuple[dt.date, str]]] = {}
    if len(h):
        h = h[~h["is_control"].astype(bool)]
        days = _dates(h["as_of_date"])
        recent = h[(days >= as_of - dt.timedelta(days=longest - 1)) & (days < as_of)]
        for customer, when, campaign in zip(
            recent["customer_id"], _dates(recent["as_of_date"]), recent["campaign_id"], strict=True
        ):
            contacts.setdefault(customer, []).append((when, campaign))
    bad = 0
    for customer, campaign in zip(a["customer_id"], a["campaign_id"], strict=True):
        offer = offer_of.get(campaign)
        mine = contacts.get(customer, [])
        for rule in rules:
            start = as_of - dt.timedelta(days=rule.days - 1)
            seen = [c for when, c in mine if when >= start]
            offers = [offer_of[c] for c in seen if c in offer_of]
            broken = (
                (rule.kind == "never_with" and campaign == rule.b and rule.a in seen)
                or (rule.kind == "never_with" and campaign == rule.a and rule.b in seen)
                or (rule.kind == "never_followed_by" and campaign == rule.b and rule.a in seen)
                or (rule.kind == "only_with" and campaign == rule.b and rule.a not in seen)
                or (
                    rule.kind == "max_duplicates"
                    and offer is not None
                    and rule.offer in (None, offer)
                    and offers.count(offer) >= (rule.max_contacts or 0)
                )
                or (
                    rule.kind == "min_unique_offers"
                    and offer in offers
                    and len(set(offers)) < (rule.min_offers or 0)
                )
            )
            bad += int(broken)
    return bad


def global_control_violations(assignments, catalog: Catalog) -> int:
    """Global-control members assigned a campaign that is not transactional (must be 0)."""
    from tessera.campaigns.global_control import is_member

    a = _frame(assignments)
    policy = catalog.policies.global_control
    if policy is None or a.empty:
        return 0
    transactional = {c.id for c in catalog.campaigns if c.transactional}
    marketing = a[~a["campaign_id"].isin(transactional)]
    return int(sum(is_member(policy, str(c)) for c in marketing["customer_id"]))


def customers_without_segment(customer_ids: pd.Series, membership) -> int:
    """Customers of the date that have no micro-segment (must be 0)."""
    m = _frame(membership)
    have = set(m.loc[m["micro_segment_id"].notna(), "customer_id"])
    return int((~customer_ids.isin(have)).sum())
