"""The global control group: a stable salted-hash share that gets no marketing campaign."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from campaign_builders import D0, make_catalog, membership
from test_catalog import BASE, line_of, problems

from tessera.campaigns import global_control, invariants
from tessera.campaigns.catalog import GlobalControl, parse_catalog
from tessera.campaigns.engine import assign_campaigns, run_dates

CUSTOMERS = {f"c{i:04d}": ["g0"] for i in range(2000)}


def _catalog(share: float = 0.1, salt: str = "s1", **extra):
    return make_catalog(
        [
            {"id": "promo", "target_groups": ["g0"], "priority": 5},
            {"id": "receipt", "target_groups": ["g0"], "priority": 1, "transactional": True},
        ],
        global_control={"share": share, "salt": salt},
        **extra,
    )


def test_members_get_no_marketing_campaign_and_transactional_still_reaches_them():
    cat = _catalog()
    result = assign_campaigns(membership(CUSTOMERS), cat, D0)
    a = result.assignments.to_pandas().set_index("customer_id")["campaign_id"]
    x = result.exclusions.to_pandas()
    held = {c for c in CUSTOMERS if global_control.is_member(cat.policies.global_control, c)}
    assert 150 <= len(held) <= 250  # 10% of 2,000, within hashing noise
    assert set(a[a == "receipt"].index) == held
    assert set(a[a == "promo"].index) == set(CUSTOMERS) - held
    gx = x[x["reason"] == "global_control"]
    assert set(gx["customer_id"]) == held
    assert set(gx["campaign_id"]) == {"promo"}
    assert gx["taken_by"].isna().all()
    assert invariants.global_control_violations(result.assignments, cat) == 0


def test_membership_is_stable_across_dates_and_campaign_changes_until_the_salt_changes():
    policy = GlobalControl(share=0.05, salt="s1")
    m = membership(CUSTOMERS)
    first = set(global_control.members(m, policy, D0).column("customer_id").to_pylist())
    later = set(
        global_control.members(m, policy, D0 + dt.timedelta(days=30))
        .column("customer_id")
        .to_pylist()
    )
    assert first == later
    other_catalog = make_catalog(
        [{"id": "x", "target_groups": ["g0"], "priority": 9}],
        global_control={"share": 0.05, "salt": "s1"},
        control_salt="another",
    )
    out = assign_campaigns(m, other_catalog, D0).exclusions.to_pandas()
    assert set(out.loc[out["reason"] == "global_control", "customer_id"]) == first
    resalted = set(
        global_control.members(m, GlobalControl(share=0.05, salt="s2"), D0)
        .column("customer_id")
        .to_pylist()
    )
    assert resalted != first
    assert abs(len(resalted) - len(first)) < 60


def test_python_and_duckdb_compute_the_same_bucket():
    ids = [f"c{i}" for i in range(300)] + ["ünï", "42", ""]
    con = duckdb.connect()
    got = [
        con.execute(
            f"select {global_control.SQL_BUCKET} from (select $c as customer_id)",
            {"gc_salt": "salty", "c": c},
        ).fetchone()[0]
        for c in ids
    ]
    assert got == [global_control.bucket("salty", c) for c in ids]


def test_global_control_counts_before_locks_and_history():
    cat = _catalog(share=0.15)
    days = {D0 + dt.timedelta(days=n): membership(CUSTOMERS) for n in range(3)}
    results = run_dates(days, cat)
    for result in results.values():
        assert invariants.global_control_violations(result.assignments, cat) == 0


def test_catalog_without_global_control_excludes_nobody_for_it():
    cat = make_catalog([{"id": "promo", "target_groups": ["g0"]}])
    result = assign_campaigns(membership(CUSTOMERS), cat, D0)
    assert result.exclusions.num_rows == 0
    assert result.assignments.num_rows == len(CUSTOMERS)
    assert global_control.members(membership(CUSTOMERS), None, D0).num_rows == 0


@pytest.mark.parametrize("share", [0.005, 0.2])
def test_share_outside_one_to_fifteen_percent_is_an_error_with_its_line(share):
    text = BASE + f"policies:\n  global_control:\n    share: {share}\n    salt: s\n"
    found = problems(text)
    assert len(found) == 1
    assert "global_control.share" in found[0]
    assert f"catalog.yml:{line_of(text, 'share:')}" in found[0]


def test_default_share_is_five_percent_and_the_salt_is_required():
    text = BASE + "policies:\n  global_control:\n    salt: s\n"
    assert parse_catalog(text).policies.global_control.share == 0.05
    found = problems(BASE + "policies:\n  global_control: {share: 0.05}\n")
    assert any("missing required field 'salt'" in p for p in found)


def test_salt_history_row_only_when_salt_or_share_changes():
    policy = GlobalControl(share=0.05, salt="s1")
    assert global_control.salt_change(None, policy, D0, "f").num_rows == 1
    assert global_control.salt_change(("s1", 0.05), policy, D0, "f").num_rows == 0
    changed = global_control.salt_change(("s0", 0.05), policy, D0, "f").to_pylist()
    assert [(r["as_of_date"], r["salt"], r["share"]) for r in changed] == [(D0, "s1", 0.05)]
    assert global_control.salt_change(None, None, D0, "f").num_rows == 0
    off = global_control.salt_change(("s1", 0.05), None, D0, "f").to_pylist()
    assert [(r["salt"], r["share"]) for r in off] == [(None, 0.0)]
