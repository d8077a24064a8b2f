"""Matrix engine semantics: priority, locks, caps, capacity, exclusions, control groups."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from campaign_builders import D0, make_catalog, membership

from tessera.campaigns.engine import assign_campaigns, run_dates


def day(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


def winners(result) -> dict[str, str]:
    a = result.assignments.to_pandas()
    return dict(zip(a["customer_id"], a["campaign_id"], strict=True))


def reasons(result) -> dict[tuple[str, str], tuple[str, str | None]]:
    x = result.exclusions.to_pandas()
    return {
        (r.customer_id, r.campaign_id): (r.reason, None if pd.isna(r.taken_by) else r.taken_by)
        for r in x.itertuples()
    }


def test_highest_priority_eligible_campaign_wins_and_losers_record_taken_by():
    cat = make_catalog(
        [
            {"id": "low", "target_groups": ["a"], "priority": 1},
            {"id": "high", "target_groups": ["a"], "priority": 9},
        ]
    )
    result = assign_campaigns(membership({"c1": ["a"]}), cat, D0)
    assert winners(result) == {"c1": "high"}
    assert reasons(result) == {("c1", "low"): ("lower_priority", "high")}


def test_ties_break_on_tie_break_then_earlier_start_then_id():
    tied = [
        {"id": "b_camp", "target_groups": ["a"], "priority": 5, "start": "2025-01-01"},
        {"id": "a_camp", "target_groups": ["a"], "priority": 5, "start": "2025-01-02"},
    ]
    assert winners(assign_campaigns(membership({"c": ["a"]}), make_catalog(tied), D0)) == {
        "c": "b_camp"
    }
    tied[0]["tie_break"], tied[1]["tie_break"] = 2, 1
    assert winners(assign_campaigns(membership({"c": ["a"]}), make_catalog(tied), D0)) == {
        "c": "a_camp"
    }


def test_customer_in_duration_period_gets_no_new_campaign_until_d_plus_duration():
    cat = make_catalog(
        [
            {
                "id": "long",
                "target_groups": ["a"],
                "priority": 9,
                "duration_days": 3,
                "end": D0.isoformat(),
            },
            {"id": "daily", "target_groups": ["a"], "priority": 1},
        ]
    )
    m = membership({"c1": ["a"]})
    results = run_dates({day(n): m for n in range(4)}, cat)
    assert winners(results[day(0)]) == {"c1": "long"}
    assert results[day(0)].assignments.to_pandas()["locked_until"].iloc[0] == day(3)
    for n in (1, 2):  # d+1 .. d+D-1 locked, d+D-1 included
        assert winners(results[day(n)]) == {}
        assert reasons(results[day(n)]) == {("c1", "daily"): ("duration_period", "long")}
    assert winners(results[day(3)]) == {"c1": "daily"}  # free on d+D


def test_ignore_locks_campaign_enters_locked_customers_and_sets_its_own_lock():
    cat = make_catalog(
        [
            {
                "id": "long",
                "target_groups": ["a"],
                "priority": 5,
                "duration_days": 10,
                "end": D0.isoformat(),
            },
            {
                "id": "service",
                "target_groups": ["b"],
                "priority": 9,
                "duration_days": 2,
                "ignore_locks": True,
                "start": day(1).isoformat(),
            },
            {"id": "filler", "target_groups": ["a"], "priority": 1},
        ]
    )
    results = run_dates(
        {
            D0: membership({"c": ["a"]}),
            day(1): membership({"c": ["a", "b"]}),
            day(2): membership({"c": ["a"]}),
        },
        cat,
    )
    assert winners(results[day(1)]) == {"c": "service"}
    assert reasons(results[day(2)])[("c", "filler")][0] == "duration_period"


def test_always_exclude_spares_transactional_campaigns_only():
    cat = make_catalog(
        [
            {"id": "promo", "target_groups": ["a"], "priority": 9},
            {"id": "receipt", "target_groups": ["a"], "priority": 1, "transactional": True},
        ],
        always_exclude=["blocked"],
    )
    result = assign_campaigns(membership({"c": ["a", "blocked"], "d": ["a"]}), cat, D0)
    assert winners(result) == {"c": "receipt", "d": "promo"}
    assert reasons(result)[("c", "promo")] == ("always_exclude", None)


def test_unreachable_channels_give_no_consent_and_fall_back_to_next_channel():
    cat = make_catalog([{"id": "p", "target_groups": ["a"], "channels": ["email", "sms"]}])
    m = membership(
        {"x": ["a"], "y": ["a"]}, email={"x": False, "y": False}, sms={"x": True, "y": False}
    )
    result = assign_campaigns(m, cat, D0)
    a = result.assignments.to_pandas()
    assert a[["customer_id", "channel"]].values.tolist() == [["x", "sms"]]
    assert reasons(result) == {("y", "p"): ("no_consent", None)}


def test_rolling_cap_counts_contacts_inside_the_window_only():
    cat = make_catalog(
        [{"id": "news", "target_groups": ["a"]}],
        caps=[{"id": "c2", "channels": ["email"], "max_contacts": 2, "days": 3}],
    )
    results = run_dates({day(n): membership({"c": ["a"]}) for n in range(6)}, cat)
    sent = [bool(winners(results[day(n)])) for n in range(6)]
    # 2 contacts in any 3 consecutive days: day 2 capped (days 0,1 inside), day 3 free (day 0 out)
    assert sent == [True, True, False, True, True, False]
    assert reasons(results[day(2)]) == {("c", "news"): ("cap", None)}


def test_capped_channel_lets_the_next_campaign_win_on_another_channel():
    cat = make_catalog(
        [
            {"id": "sms_promo", "target_groups": ["a"], "channels": ["sms"], "priority": 9},
            {"id": "mail_promo", "target_groups": ["a"], "channels": ["email"], "priority": 1},
        ],
        caps=[{"id": "s", "channels": ["sms"], "max_contacts": 1, "days": 7}],
    )
    results = run_dates({day(n): membership({"c": ["a"]}) for n in range(2)}, cat)
    assert winners(results[day(1)]) == {"c": "mail_promo"}
    assert reasons(results[day(1)])[("c", "sms_promo")] == ("cap", None)


def test_capacity_drops_lowest_priority_first():
    cat = make_catalog(
        [
            {"id": "vip", "target_groups": ["v"], "channels": ["direct_mail"], "priority": 9},
            {"id": "mass", "target_groups": ["m"], "channels": ["direct_mail"], "priority": 1},
        ],
        capacity={"direct_mail": 3},
    )
    m = membership({"v1": ["v"], "v2": ["v"], "m1": ["m"], "m2": ["m"], "m3": ["m"]})
    result = assign_campaigns(m, cat, D0)
    got = winners(result)
    assert len(got) == 3 and {"v1", "v2"} <= set(got)
    dropped = [k for k, v in reasons(result).items() if v[0] == "capacity"]
    assert len(dropped) == 2 and all(k[1] == "mass" for k in dropped)


def test_control_group_is_recorded_locked_and_stable():
    cat = make_catalog(
        [{"id": "p", "target_groups": ["a"], "control_share": 0.3, "duration_days": 2}]
    )
    m = membership({f"c{i}": ["a"] for i in range(4000)})
    first = assign_campaigns(m, cat, D0).assignments.to_pandas()
    again = assign_campaigns(m, cat, D0).assignments.to_pandas()
    share = first["is_control"].mean()
    assert abs(share - 0.3) < 0.03
    assert first.equals(again)
    assert (first["locked_until"] == day(2)).all()


def test_catalog_change_takes_effect_next_date_without_rewriting_history():
    old = make_catalog([{"id": "p", "target_groups": ["a"], "duration_days": 5}])
    new = make_catalog(
        [
            {"id": "p", "target_groups": ["a"], "duration_days": 1},
            {"id": "q", "target_groups": ["a"], "priority": 99},
        ]
    )
    m = membership({"c": ["a"]})
    results = run_dates({D0: m, day(1): m, day(5): m}, {D0: old, day(1): new, day(5): new})
    assert results[D0].assignments.to_pandas()["locked_until"].iloc[0] == day(5)
    # the lock set under the old catalog still holds on D+1 ...
    assert winners(results[day(1)]) == {}
    # ... and the new top campaign wins once it ends
    assert winners(results[day(5)]) == {"c": "q"}


def test_inactive_campaigns_are_not_candidates():
    cat = make_catalog([{"id": "weekend", "target_groups": ["a"], "weekdays": ["sat", "sun"]}])
    assert winners(assign_campaigns(membership({"c": ["a"]}), cat, D0)) == {}  # Monday
    assert winners(assign_campaigns(membership({"c": ["a"]}), cat, day(5))) == {"c": "weekend"}


def test_locks_ending_the_same_day_report_the_latest_assigned_campaign_every_time():
    cat = make_catalog([{"id": "new", "target_groups": ["a"], "priority": 1}])
    history = pd.DataFrame(
        {
            "as_of_date": [day(-2), day(-1), day(-2)],
            "customer_id": ["c1", "c1", "c1"],
            "campaign_id": ["a_early", "b_late", "c_early"],
            "channel": ["email", "sms", "email"],
            "is_control": [False, False, False],
            "locked_until": [day(2), day(2), day(2)],
        }
    )
    # Three locks end on the same day: the latest assignment is the one reported (not the first
    # row, the last row or an id order), on every run.
    for _ in range(20):
        result = assign_campaigns(membership({"c1": ["a"]}), cat, D0, history)
        assert reasons(result) == {("c1", "new"): ("duration_period", "b_late")}


def test_capacity_equal_to_treated_demand_cuts_nothing_not_even_controls():
    cat = make_catalog(
        [{"id": "p", "target_groups": ["a"], "channels": ["sms"], "control_share": 0.5}],
        capacity={"sms": 0},
    )
    m = membership({f"c{i:03d}": ["a"] for i in range(200)})
    free = assign_campaigns(m, make_catalog(cat.model_dump()["campaigns"]), D0)
    treated = int((~free.assignments.to_pandas()["is_control"]).sum())
    assert 60 < treated < 140
    for capacity in (treated, treated + 1):
        fits = make_catalog(
            [{"id": "p", "target_groups": ["a"], "channels": ["sms"], "control_share": 0.5}],
            capacity={"sms": capacity},
        )
        result = assign_campaigns(m, fits, D0)
        assert result.assignments.equals(free.assignments)
        assert result.exclusions.num_rows == 0
    # one below the demand: exactly one contact is cut, and the controls ranked after the
    # last kept contact go with it
    tight = make_catalog(
        [{"id": "p", "target_groups": ["a"], "channels": ["sms"], "control_share": 0.5}],
        capacity={"sms": treated - 1},
    )
    cut = assign_campaigns(m, tight, D0).assignments.to_pandas()
    assert int((~cut["is_control"]).sum()) == treated - 1
