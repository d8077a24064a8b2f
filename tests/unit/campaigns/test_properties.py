"""Property tests: matrix invariants hold for random catalogs, customers and histories."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from campaign_builders import D0, make_catalog, membership
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tessera.campaigns import invariants
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
