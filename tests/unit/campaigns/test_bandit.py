"""Thompson-sampling allocation: even split until evidence, then traffic to the better action."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from campaign_builders import D0

from tessera.campaigns import bandit

ACTIONS = ["subject_a", "subject_b", "subject_c"]


def _evidence(rows):
    return pd.DataFrame(rows, columns=["action_id", "targeted", "conversions"])


def test_split_stays_even_until_every_action_has_the_minimum_evidence():
    ev = _evidence([("subject_a", 500, 100), ("subject_b", 500, 20), ("subject_c", 49, 15)])
    alloc = bandit.allocate(ev, ACTIONS, "promo", D0)
    assert alloc.is_exploring
    assert alloc.shares == pytest.approx(dict.fromkeys(ACTIONS, 1 / 3))
    ev = _evidence([("subject_a", 500, 100), ("subject_b", 500, 20), ("subject_c", 500, 14)])
    assert bandit.allocate(ev, ACTIONS, "promo", D0).is_exploring


def test_with_evidence_the_better_action_gets_most_traffic_deterministically():
    ev = _evidence([("subject_a", 400, 100), ("subject_b", 400, 60), ("subject_c", 400, 58)])
    alloc = bandit.allocate(ev, ACTIONS, "promo", D0)
    assert not alloc.is_exploring
    assert alloc.shares["subject_a"] > 0.95
    assert sum(alloc.shares.values()) == pytest.approx(1.0)
    assert bandit.allocate(ev, ACTIONS, "promo", D0).shares == alloc.shares
    assert bandit.expected_gain(alloc) > 0
    post = alloc.posteriors.set_index("action_id")
    assert (post["low"] < post["mean"]).all() and (post["mean"] < post["high"]).all()


def test_customers_split_by_the_shares_and_the_same_way_on_a_rerun():
    alloc = bandit.Allocation(
        shares={"subject_a": 0.7, "subject_b": 0.2, "subject_c": 0.1},
        is_exploring=False,
        posteriors=pd.DataFrame(),
    )
    ids = pd.Series([f"c{i}" for i in range(20_000)])
    picks = bandit.assign_actions(ids, alloc, "promo", D0)
    shares = picks.value_counts(normalize=True)
    assert shares["subject_a"] == pytest.approx(0.7, abs=0.02)
    assert shares["subject_c"] == pytest.approx(0.1, abs=0.02)
    assert picks.equals(bandit.assign_actions(ids, alloc, "promo", D0))
    other_day = bandit.assign_actions(ids, alloc, "promo", D0 + dt.timedelta(days=1))
    assert not picks.equals(other_day)


def test_simulated_campaign_moves_most_traffic_to_the_truly_better_action():
    truth = {"subject_a": 0.05, "subject_b": 0.08, "subject_c": 0.05}
    rng = np.random.default_rng(7)
    ids = pd.Series([f"c{i}" for i in range(2_000)])
    totals = dict.fromkeys(ACTIONS, (0, 0))
    pending = []  # windows close 3 days after the send
    shares_by_day = []
    for n in range(30):
        day = D0 + dt.timedelta(days=n)
        closed = [p for p in pending if p[0] <= day]
        pending = [p for p in pending if p[0] > day]
        for _, action, sent, won in closed:
            t, c = totals[action]
            totals[action] = (t + sent, c + won)
        ev = _evidence([(a, *totals[a]) for a in ACTIONS])
        alloc = bandit.allocate(ev, ACTIONS, "promo", day)
        shares_by_day.append(alloc.shares["subject_b"])
        picks = bandit.assign_actions(ids, alloc, "promo", day).value_counts()
        for action, sent in picks.items():
            won = int(rng.binomial(sent, truth[action]))
            pending.append((day + dt.timedelta(days=3), action, int(sent), won))
    assert shares_by_day[0] == pytest.approx(1 / 3)
    assert np.mean(shares_by_day[-10:]) > 0.8


@pytest.mark.parametrize("actions", [["only"], ["a", "b", "c", "d", "e"], ["a", "a"]])
def test_two_to_four_distinct_actions(actions):
    with pytest.raises(ValueError, match="2-4 distinct actions"):
        bandit.allocate(_evidence([]), actions, "promo", D0)
