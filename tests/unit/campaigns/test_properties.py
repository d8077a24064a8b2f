"""Property tests: matrix invariants hold for random catalogs, customers and histories."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from campaign_builders import D0, make_catalog, membership
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tessera.campaigns import invariants
from tessera.campaigns.catalog import Catalog
from tessera.campaigns.engine import assign_campaigns, run_dates

GROUPS = ["g0", "g1", "g2", "g3"]
CHANNELS = ["email", "sms", "direct_mail", "webhook"]
DAYS = 4

campaign_st = st.fixed_dictionaries(
    {
        "target_groups": st.lists(st.sampled_from(GROUPS), min_size=1, max_size=2, unique=True),
        "channels": st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=2, unique=True),
        "priority": st.integers(0, 5),  # small range: ties happen and the tie-break decides
        "duration_days": st.integers(0, 4),
        "control_share": st.sampled_from([0.0, 0.1, 0.5]),
        "ignore_locks": st.booleans(),
        "transactional": st.booleans(),
        "start": st.sampled_from(["2025-01-01", "2025-03-04"]),
        "weekdays": st.one_of(st.none(), st.just(["mon", "wed", "thu"])),
    }
)


@st.composite
def scenarios(draw):
    camps = draw(st.lists(campaign_st, min_size=1, max_size=6))
    for i, c in enumerate(camps):
        c["id"] = f"k{i}"
        c["tie_break"] = i
    policies = {
        "caps": draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "channels": st.lists(
                            st.sampled_from(CHANNELS), min_size=1, max_size=3, unique=True
                        ),
                        "max_contacts": st.integers(1, 3),
                        "days": st.integers(1, 4),
                    }
                ),
                max_size=2,
            )
        ),
        "capacity": draw(st.dictionaries(st.sampled_from(CHANNELS), st.integers(0, 8), max_size=2)),
        "always_exclude": draw(st.sampled_from([[], ["g3"]])),
    }
    for i, cap in enumerate(policies["caps"]):
        cap["id"] = f"cap{i}"
    catalog = make_catalog(camps, **policies)
    n = draw(st.integers(1, 12))
    days = {}
    for d in range(DAYS):
        groups = {
            f"c{i}": draw(st.lists(st.sampled_from(GROUPS), max_size=3, unique=True))
            for i in range(n)
        }
        reach = {ch: {f"c{i}": draw(st.booleans()) for i in range(n)} for ch in ("email", "sms")}
        days[D0 + dt.timedelta(days=d)] = membership(groups, **reach)
    return catalog, days


def rank(catalog, campaign_id):
    c = catalog.campaign(campaign_id)
    return (-c.priority, c.tie_break is None, c.tie_break or 0, c.start, c.id)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_matrix_invariants_hold_on_random_inputs(scenario):
    catalog, days = scenario
    results = run_dates(days, catalog)
    history = pd.DataFrame()
    for day, result in results.items():
        a = result.assignments.to_pandas()
        x = result.exclusions.to_pandas()
        hist = history if len(history) else a.iloc[0:0]
        assert invariants.duplicate_assignments(a) == 0
        assert invariants.lock_violations(a, hist, catalog, day) == 0
        assert invariants.cap_violations(a, hist, catalog, day) == 0
        assert invariants.capacity_violations(a, catalog) == 0
        # every assignment and exclusion concerns an active campaign whose group holds the customer
        groups = dict(zip(days[day]["customer_id"], days[day]["target_groups"], strict=True))
        for frame in (a, x):
            for r in frame.itertuples():
                camp = catalog.campaign(r.campaign_id)
                assert camp.is_active(day)
                assert set(camp.target_groups) & set(groups[r.customer_id])
        # the winner outranks every campaign that lost to it on priority
        lost = x[x["reason"] == "lower_priority"]
        won = dict(zip(a["customer_id"], a["campaign_id"], strict=True))
        for r in lost.itertuples():
            assert rank(catalog, r.taken_by) < rank(catalog, r.campaign_id)
            if r.customer_id in won:
                assert won[r.customer_id] == r.taken_by
        history = pd.concat([history, a], ignore_index=True)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_same_inputs_give_the_same_rows(scenario):
    catalog, days = scenario
    first, second = run_dates(days, catalog), run_dates(days, catalog)
    for day in days:
        for name in ("assignments", "exclusions", "matrix"):
            assert getattr(first[day], name).equals(getattr(second[day], name))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_backfill_in_date_order_reproduces_daily_runs(scenario):
    catalog, days = scenario
    together = run_dates(days, catalog)
    history = None
    for day in sorted(days):
        alone = assign_campaigns(days[day], catalog, day, history)
        assert alone.assignments.equals(together[day].assignments)
        frame = alone.assignments.to_pandas()
        history = frame if history is None else pd.concat([history, frame], ignore_index=True)


@settings(max_examples=10, deadline=None)
@given(share=st.sampled_from([0.05, 0.2, 0.5]), salt=st.text(min_size=1, max_size=8))
def test_control_share_is_within_tolerance_for_any_salt(share, salt):
    catalog = make_catalog(
        [{"id": "p", "target_groups": ["a"], "control_share": share}], control_salt=salt
    )
    n = 3000
    a = assign_campaigns(membership({f"c{i}": ["a"] for i in range(n)}), catalog, D0)
    observed = a.assignments.to_pandas()["is_control"].mean()
    tolerance = 4 * (share * (1 - share) / n) ** 0.5
    assert abs(observed - share) < tolerance


RULE_KINDS = ["never_with", "never_followed_by", "only_with", "max_duplicates", "min_unique_offers"]


@st.composite
def scenarios_with_pair_rules(draw):
    """The scenarios above plus offers, pair rules of every kind and a global control group."""
    catalog, days = draw(scenarios())
    raw = catalog.model_dump(mode="json", by_alias=True, exclude_none=True)
    ids = [c["id"] for c in raw["campaigns"]]
    for c in raw["campaigns"]:
        offer = draw(st.sampled_from([None, "o1", "o2", "o3"]))
        if offer:
            c["offer"] = offer
    offers = sorted({c["offer"] for c in raw["campaigns"] if c.get("offer")})
    rules = []
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(RULE_KINDS))
        rule = {"id": f"r{i}", "kind": kind, "days": draw(st.integers(1, 4))}
        if kind in ("never_with", "never_followed_by", "only_with"):
            a = draw(st.sampled_from(ids))
            b = draw(st.sampled_from(ids))
            if a == b and kind != "never_followed_by":
                continue
            rule.update(a=a, b=b)
        elif kind == "max_duplicates":
            rule["max_contacts"] = draw(st.integers(1, 2))
            if offers and draw(st.booleans()):
                rule["offer"] = draw(st.sampled_from(offers))
        else:
            rule["min_offers"] = draw(st.integers(2, 3))
        rules.append(rule)
    raw["policies"]["pair_rules"] = rules
    if draw(st.booleans()):
        raw["policies"]["global_control"] = {"share": 0.15, "salt": draw(st.sampled_from("xyz"))}
    return Catalog.model_validate(raw), days


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios_with_pair_rules())
def test_no_assignment_breaks_a_pair_rule_and_every_pair_rule_exclusion_is_justified(scenario):
    catalog, days = scenario
    results = run_dates(days, catalog)
    rule_ids = {r.id for r in catalog.policies.pair_rules}
    history = pd.DataFrame()
    for day, result in results.items():
        a = result.assignments.to_pandas()
        x = result.exclusions.to_pandas()
        hist = history if len(history) else a.iloc[0:0]
        assert invariants.pair_rule_violations(a, hist, catalog, day) == 0
        assert invariants.global_control_violations(a, catalog) == 0
        assert invariants.duplicate_assignments(a) == 0
        assert invariants.lock_violations(a, hist, catalog, day) == 0
        assert invariants.cap_violations(a, hist, catalog, day) == 0
        assert invariants.capacity_violations(a, catalog) == 0
        assert x["rule_id"].isna().eq(x["reason"] != "pair_rule").all()
        for r in x[x["reason"] == "pair_rule"].itertuples():
            assert r.rule_id in rule_ids
            # the candidate really breaks the rule it names, given the contacts before D
            rule = next(p for p in catalog.policies.pair_rules if p.id == r.rule_id)
            only = catalog.model_copy(
                update={"policies": catalog.policies.model_copy(update={"pair_rules": [rule]})}
            )
            candidate = pd.DataFrame(
                {"customer_id": [r.customer_id], "campaign_id": [r.campaign_id]}
            )
            assert invariants.pair_rule_violations(candidate, hist, only, day) == 1
            # earlier rules in catalog order do not apply: the first rule that applies is named
            for earlier in catalog.policies.pair_rules[: catalog.policies.pair_rules.index(rule)]:
                before = catalog.model_copy(
                    update={
                        "policies": catalog.policies.model_copy(update={"pair_rules": [earlier]})
                    }
                )
                assert invariants.pair_rule_violations(candidate, hist, before, day) == 0
            if rule.kind == "only_with":
                assert pd.isna(r.taken_by)
            else:
                assert r.taken_by in set(
                    hist.loc[hist["customer_id"] == r.customer_id, "campaign_id"]
                )
        history = pd.concat([history, a], ignore_index=True)
