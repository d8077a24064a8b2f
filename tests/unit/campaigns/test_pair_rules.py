"""Pair rules (Unica Optimize semantics): each kind, attribution, taken_by and validation."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from campaign_builders import D0, make_catalog, membership
from test_catalog import BASE, line_of, problems

from tessera.campaigns.engine import assign_campaigns, run_dates


def _run(camps, rules, n_days=3, groups=None):
    cat = make_catalog(camps, pair_rules=rules)
    m = membership(groups or {"c1": ["g"]})
    return run_dates({D0 + dt.timedelta(days=d): m for d in range(n_days)}, cat)


def _picks(results, customer="c1"):
    out = []
    for day in sorted(results):
        a = results[day].assignments.to_pandas()
        out.append(a.loc[a["customer_id"] == customer, "campaign_id"].tolist() or [None])
    return [p[0] for p in out]


def _pair_exclusions(results):
    frames = [r.exclusions.to_pandas() for r in results.values()]
    x = pd.concat(frames, ignore_index=True)
    return x[x["reason"] == "pair_rule"][["as_of_date", "campaign_id", "taken_by", "rule_id"]]


A = {"id": "a", "target_groups": ["g"], "priority": 9}
B = {"id": "b", "target_groups": ["g"], "priority": 5}


def test_never_with_blocks_both_orders_within_the_window():
    rule = [{"id": "ab", "kind": "never_with", "a": "a", "b": "b", "days": 3}]
    # day 0 a wins; b is blocked on days 1-2 (a within 3 days), a itself may repeat
    assert _picks(_run([A, B], rule)) == ["a", "a", "a"]
    hi_b = {**B, "priority": 20}
    lo_a = {**A, "priority": 1}
    results = _run([lo_a, hi_b], rule, n_days=4)
    assert _picks(results) == ["b", "b", "b", "b"]
    x = _pair_exclusions(results)
    assert set(x["campaign_id"]) == {"a"} and set(x["taken_by"]) == {"b"}
    assert set(x["rule_id"]) == {"ab"}


def test_never_followed_by_blocks_b_after_a_but_not_a_after_b():
    rule = [{"id": "no_b_after_a", "kind": "never_followed_by", "a": "a", "b": "b", "days": 2}]
    a_once = {**A, "end": "2025-03-03"}  # a runs on D0 only
    results = _run([a_once, B], rule, n_days=3)
    # day 1: b blocked (a on D0, within 2 days); day 2: window [D0+1, D0+1] -> b allowed
    assert _picks(results) == ["a", None, "b"]
    x = _pair_exclusions(results)
    assert x[["campaign_id", "taken_by", "rule_id"]].values.tolist() == [["b", "a", "no_b_after_a"]]
    b_first = {**B, "end": "2025-03-03", "priority": 20}
    later_a = {**A, "priority": 1}
    assert _picks(_run([later_a, b_first], rule, n_days=2)) == ["b", "a"]


def test_only_with_lets_b_reach_only_customers_contacted_by_a():
    rule = [{"id": "b_needs_a", "kind": "only_with", "a": "a", "b": "b", "days": 5}]
    a_once = {**A, "end": "2025-03-03", "target_groups": ["ga"]}
    results = _run(
        [a_once, {**B, "target_groups": ["g", "ga"]}],
        rule,
        n_days=2,
        groups={"c1": ["ga"], "c2": ["g"]},
    )
    assert _picks(results, "c1") == ["a", "b"]
    assert _picks(results, "c2") == [None, None]
    x = _pair_exclusions(results)
    assert x["taken_by"].isna().all() and set(x["rule_id"]) == {"b_needs_a"}


def test_max_duplicates_limits_contacts_with_the_same_offer():
    rule = [
        {"id": "o1_twice", "kind": "max_duplicates", "offer": "o1", "max_contacts": 2, "days": 7}
    ]
    camps = [{**A, "offer": "o1"}, {**B, "offer": "o2"}]
    assert _picks(_run(camps, rule, n_days=4)) == ["a", "a", "b", "b"]
    any_offer = [{"id": "dup", "kind": "max_duplicates", "max_contacts": 1, "days": 7}]
    assert _picks(_run(camps, any_offer, n_days=3)) == ["a", "b", None]


def test_min_unique_offers_repeats_an_offer_only_once_enough_offers_were_made():
    rule = [{"id": "variety", "kind": "min_unique_offers", "min_offers": 2, "days": 7}]
    camps = [{**A, "offer": "o1"}, {**B, "offer": "o2"}]
    # day 1 may not repeat o1 (only one offer so far): b; from then on two offers -> a again
    assert _picks(_run(camps, rule, n_days=3)) == ["a", "b", "a"]
    # when no other offer is available the repeat is excluded and the customer gets nothing
    assert _picks(_run([{**A, "offer": "o1"}], rule, n_days=2)) == ["a", None]


def test_control_rows_are_no_contacts_for_pair_rules():
    rule = [{"id": "ab", "kind": "never_with", "a": "a", "b": "b", "days": 3}]
    camps = [{**A, "control_share": 0.9, "end": "2025-03-03"}, B]
    groups = {f"c{i}": ["g"] for i in range(40)}
    results = _run(camps, rule, n_days=2, groups=groups)
    first = results[D0].assignments.to_pandas()
    controls = set(first.loc[first["is_control"], "customer_id"])
    second = results[D0 + dt.timedelta(days=1)].assignments.to_pandas()
    assert controls and controls <= set(second.loc[second["campaign_id"] == "b", "customer_id"])


def test_a_catalog_without_pair_rules_gives_no_rule_id():
    cat = make_catalog([A, B])
    x = assign_campaigns(membership({"c1": ["g"]}), cat, D0).exclusions.to_pandas()
    assert list(x.columns)[-1] == "rule_id" and x["rule_id"].isna().all()


def _with_rules(rules_yaml: str) -> str:
    return BASE + "policies:\n  pair_rules:\n" + rules_yaml


def test_bad_pair_rules_are_explained_with_their_lines():
    text = _with_rules(
        "    - {id: r1, kind: never_with, a: winback_ski, b: nope, days: 7}\n"
        "    - {id: r2, kind: only_with, a: newsletter, days: 7}\n"
        "    - {id: r3, kind: max_duplicates, a: newsletter, max_contacts: 2, days: 7}\n"
        "    - {id: r1, kind: max_duplicates, offer: ghost, max_contacts: 1, days: 3}\n"
    )
    found = problems(text)
    joined = "\n".join(found)
    assert (
        f"pair rule r1: b unknown campaign 'nope' (catalog.yml:{line_of(text, 'id: r1')})" in found
    )
    assert (
        f"pair rule r2: kind only_with needs 'b' (catalog.yml:{line_of(text, 'id: r2')})" in found
    )
    assert "pair rule r3: a is not used by kind max_duplicates" in joined
    assert "pair rule r1: id duplicate id 'r1'" in joined
    assert (
        f"no campaign has offer 'ghost' (offers: none) (catalog.yml:{line_of(text, 'ghost')})"
        in joined
    )


def test_pair_rule_types_and_ranges_are_explained_with_their_lines():
    text = _with_rules(
        "    - {id: r4, kind: min_unique_offers, min_offers: 2, days: 0}\n"
        "    - {id: r5, kind: sometimes, days: 3}\n"
    )
    found = problems(text)
    assert any(
        p.startswith("pair rule r4: days") and f"catalog.yml:{line_of(text, 'id: r4')}" in p
        for p in found
    )
    assert any(
        p.startswith("pair rule r5: kind must be one of") and "'sometimes'" in p for p in found
    )


def test_a_and_b_must_differ_except_for_a_pause_after_one_campaign():
    same = _with_rules("    - {id: r1, kind: never_with, a: newsletter, b: newsletter, days: 2}\n")
    assert any("both a and b" in p for p in problems(same))
    pause = _with_rules(
        "    - {id: r1, kind: never_followed_by, a: newsletter, b: newsletter, days: 2}\n"
    )
    from tessera.campaigns.catalog import parse_catalog

    assert parse_catalog(pause).policies.pair_rules[0].kind == "never_followed_by"
