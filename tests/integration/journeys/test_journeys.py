"""The four demo journeys end to end on the local sink, under the matrix's rules (issue 14 item 7)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from tessera.campaigns.engine import control_sql
from tests.integration.journeys.conftest import T0, customer, event

MIN = dt.timedelta(minutes=1)
DAY = dt.timedelta(days=1)


def treated(world, trigger_id: str, n: int, prefix: str = "c") -> list[str]:
    """``n`` customer ids outside the trigger's control group (the matrix's salted hash)."""
    t = next(t for t in world.catalog.triggers if t.id == trigger_id)
    salt = world.catalog.policies.control_salt
    ids = [f"{prefix}{i}" for i in range(200)]
    con = duckdb.connect()
    con.register("ids", pd.DataFrame({"customer_id": ids}))
    cut = round(t.control_share * 10_000)
    rows = con.execute(
        f"select customer_id from ids where not "
        f"({control_sql(repr(salt), repr(t.campaign_id), 'customer_id', str(cut))}) "
        "order by customer_id"
    ).fetchall()
    return [r[0] for r in rows[:n]]


def controls(world, trigger_id: str, n: int) -> list[str]:
    everyone = [f"c{i}" for i in range(200)]
    outside = set(treated(world, trigger_id, 200))
    return [c for c in everyone if c not in outside][:n]


def sent_to(world, trigger: str, step: str | None = None) -> list[str]:
    rows = world.con.execute(
        "select s.customer_id from journeys.steps s join activations.deliveries d "
        "on d.message_key = s.message_key where d.status = 'sent' and s.trigger_id = $t "
        "and ($s is null or s.step_id = $s) order by 1",
        {"t": trigger, "s": step},
    ).fetchall()
    return [r[0] for r in rows]


# --------------------------------------------------------------------------- cart abandonment


def test_an_order_before_the_wait_ends_means_no_cart_message(world):
    (buyer,) = treated(world, "cart_abandonment", 1)
    world.customers = [customer(buyer)]
    world.post(
        event(1, buyer, "add_to_cart", T0, product_id="p1", category="shoes"),
        event(2, buyer, "order", T0 + 10 * MIN),
    )
    world.tick(T0 + MIN)
    world.tick(T0 + 31 * MIN)
    world.tick(T0 + 2 * DAY)
    assert world.received() == []
    steps = world.steps()
    cart = steps[steps["trigger_id"] == "cart_abandonment"]
    assert set(cart["status"]) == {"exited"} and set(cart["reason"]) == {"ordered"}


def test_no_order_means_a_reminder_then_the_incentive_only_under_its_condition(world):
    low, high, gold = treated(world, "cart_abandonment", 3)
    world.customers = [
        customer(low, clv_tier="clv_low"),
        customer(high, clv_tier="clv_high"),
        customer(gold, clv_tier="clv_gold"),
    ]
    world.post(
        *[
            event(i, c, "add_to_cart", T0, product_id="p1", category="shoes")
            for i, c in enumerate([low, high, gold])
        ]
    )
    report = world.tick(T0 + MIN)
    assert report.entries["cart_abandonment"] == 3 and world.received() == []
    world.tick(T0 + 29 * MIN)
    assert world.received() == []  # 30 minutes not over yet
    world.tick(T0 + 31 * MIN)
    assert sent_to(world, "cart_abandonment", "reminder") == sorted([low, high, gold])
    world.tick(T0 + DAY + MIN)
    assert sent_to(world, "cart_abandonment", "incentive") == [low]
    # the gold customer gets the printed coupon (direct mail) instead of the e-mail incentive
    assert sent_to(world, "cart_abandonment", "gold_coupon") == [gold]
    steps = world.steps().set_index(["customer_id", "step_id"])
    assert steps.loc[(high, "incentive"), "reason"] == "condition"
    assert steps.loc[(high, "gold_coupon"), "reason"] == "condition"
    emails = [r for r in world.received() if r["channel"] == "email"]
    assert len(emails) == 4 and len({r["message_key"] for r in emails}) == 4


def test_a_cart_customer_in_the_control_group_gets_nothing_and_is_recorded(world):
    (ctrl,) = controls(world, "cart_abandonment", 1)
    world.customers = [customer(ctrl)]
    world.post(event(1, ctrl, "add_to_cart", T0, product_id="p1"))
    world.tick(T0 + MIN)
    world.tick(T0 + 31 * MIN)
    assert world.received() == []
    assert world.steps().iloc[0]["status"] == "control"


# --------------------------------------------------------------------------- back in stock


def test_restock_alerts_those_interested_while_out_of_stock_once_per_product(world):
    early, viewer, carter = treated(world, "back_in_stock", 3)
    world.customers = [customer(c) for c in (early, viewer, carter)]
    world.post(
        event(1, early, "product_view", T0 - 5 * DAY, product_id="p9"),
        {
            "event_id": "inv1",
            "type": "inventory",
            "product_id": "p9",
            "in_stock": False,
            "quantity": 0,
            "at": (T0 - 2 * DAY).timestamp(),
        },  # fmt: skip
        event(2, viewer, "product_view", T0 - DAY, product_id="p9"),
        event(3, carter, "add_to_cart", T0 - DAY, product_id="p9"),
        event(4, viewer, "product_view", T0 - DAY, product_id="p1"),  # another product
    )
    world.tick(T0 - DAY + MIN)
    assert sent_to(world, "back_in_stock") == []
    world.post(
        {
            "event_id": "inv2",
            "type": "inventory",
            "product_id": "p9",
            "in_stock": True,
            "quantity": 5,
            "at": T0.timestamp(),
        }  # fmt: skip
    )
    world.tick(T0 + MIN)
    assert sent_to(world, "back_in_stock") == sorted([viewer, carter])
    # out of stock and back again: interest again, but one alert per customer and product
    world.post(
        {
            "event_id": "inv3",
            "type": "inventory",
            "product_id": "p9",
            "in_stock": False,
            "at": (T0 + DAY).timestamp(),
        },  # fmt: skip
        event(5, viewer, "product_view", T0 + DAY + MIN, product_id="p9"),
        {
            "event_id": "inv4",
            "type": "inventory",
            "product_id": "p9",
            "in_stock": True,
            "at": (T0 + 2 * DAY).timestamp(),
        },  # fmt: skip
    )
    world.tick(T0 + 2 * DAY + MIN)
    alerts = [r for r in world.received() if "back_in_stock" in str(r.get("campaign_id"))]
    assert sorted(r["customer_id"] for r in alerts) == sorted([viewer, carter])


# --------------------------------------------------------------------------- tier entry


def test_tier_entry_fires_once_per_crossing(world):
    (member,) = treated(world, "loyalty_tier_entry", 1)
    (stays,) = treated(world, "loyalty_tier_entry", 1, prefix="s")
    world.customers = [
        customer(member, target_groups=["gold_tier"], prev_target_groups=[]),
        customer(stays, target_groups=["gold_tier"], prev_target_groups=["gold_tier"]),
    ]
    world.tick(T0)
    world.tick(T0 + MIN)  # the same snapshot date again: no second entry
    assert sent_to(world, "loyalty_tier_entry") == [member]
    # next date: still gold (no crossing), then out, then in again (a new crossing)
    world.as_of += dt.timedelta(days=1)
    world.customers[0] = customer(
        member, target_groups=["gold_tier"], prev_target_groups=["gold_tier"]
    )
    world.tick(T0 + DAY)
    world.as_of += dt.timedelta(days=1)
    world.customers[0] = customer(member, target_groups=[], prev_target_groups=["gold_tier"])
    world.tick(T0 + 2 * DAY)
    world.as_of += dt.timedelta(days=1)
    world.customers[0] = customer(member, target_groups=["gold_tier"], prev_target_groups=[])
    world.tick(T0 + 3 * DAY)
    assert sent_to(world, "loyalty_tier_entry") == [member, member]


# --------------------------------------------------------------------------- shared rules


def test_caps_locks_consent_and_always_exclude_of_the_daily_path_hold(world):
    capped, locked, no_mail, excluded, ok = treated(world, "back_in_stock", 5)
    today = T0.date()
    world.customers = [
        customer(capped),
        customer(locked),
        customer(no_mail, is_email_reachable=False),
        customer(excluded, is_always_excluded=True),
        customer(ok),
    ]
    # four daily e-mails in the last 7 days: the marketing_email cap (4 per 7 days) is full
    world.history = [
        {"as_of_date": today - dt.timedelta(days=d), "customer_id": capped, "campaign_id": "daily_deals",
         "channel": "email", "is_control": False, "locked_until": today - dt.timedelta(days=d)}
        for d in range(4)
    ] + [
        {"as_of_date": today, "customer_id": locked, "campaign_id": "churn_defence",
         "channel": "email", "is_control": False, "locked_until": today + dt.timedelta(days=7)}
    ]  # fmt: skip
    who = [capped, locked, no_mail, excluded, ok]
    world.post(*[event(i, c, "product_view", T0 - DAY, product_id="p9") for i, c in enumerate(who)])
    world.post({"event_id": "inv", "type": "inventory", "product_id": "p9", "in_stock": True,
                "at": T0.timestamp()})  # fmt: skip
    world.tick(T0 + MIN)
    assert sent_to(world, "back_in_stock") == [ok]
    steps = world.steps()
    reasons = steps[steps["trigger_id"] == "back_in_stock"].set_index("customer_id")["reason"]
    assert reasons[capped] == "cap"
    assert reasons[locked] == "duration_period"
    assert reasons[no_mail] == "no_consent"
    assert reasons[excluded] == "always_exclude"


def test_journey_contacts_and_locks_count_in_the_daily_matrix(world):
    from tessera.campaigns.engine import assign_campaigns
    from tessera.journeys.engine import read_journey_contacts
    from tests.unit.campaigns.campaign_builders import make_catalog, membership

    (cid,) = treated(world, "cart_abandonment", 1)
    world.customers = [customer(cid)]
    world.post(event(1, cid, "add_to_cart", T0, product_id="p1"))
    world.tick(T0 + 31 * MIN)
    assert sent_to(world, "cart_abandonment") == [cid]
    contacts = read_journey_contacts(world.data_dir)
    assert set(contacts["campaign_id"]) == {"trigger_cart_abandonment"}
    next_day = T0.date() + dt.timedelta(days=1)
    # the trigger's one-day lock: the daily matrix leaves the customer out on the next day...
    catalog = make_catalog([{"id": "promo", "target_groups": ["g"]}])
    result = assign_campaigns(membership({cid: ["g"]}), catalog, next_day, contacts).exclusions
    excl = result.to_pandas()
    assert excl["reason"].tolist() == ["duration_period"]
    # ... and the triggered e-mail counts against a daily cap of one e-mail a week
    capped = make_catalog(
        [{"id": "promo", "target_groups": ["g"]}],
        caps=[{"id": "weekly", "channels": ["email"], "max_contacts": 1, "days": 7}],
    )
    later = next_day + dt.timedelta(days=2)
    excl = assign_campaigns(
        membership({cid: ["g"]}), capped, later, contacts
    ).exclusions.to_pandas()
    assert excl["reason"].tolist() == ["cap"]


def test_an_unsubscribe_ends_the_journey_and_a_suppressed_address_is_never_sent(world):
    from tessera.activations.suppressions import build_suppressions

    (gone,) = treated(world, "cart_abandonment", 1)
    world.customers = [customer(gone)]
    world.post(event(1, gone, "add_to_cart", T0, product_id="p1"))
    world.tick(T0 + MIN)
    world.suppressions = build_suppressions(
        pd.DataFrame(
            [
                {
                    "message_id": "m",
                    "customer_id": gone,
                    "channel": "email",
                    "event": "unsubscribe",
                    "occurred_at": T0,
                    "source": "test",
                }
            ]
        ),  # fmt: skip
        pd.DataFrame(
            [
                {
                    "customer_id": gone,
                    "email": f"{gone}@example.com",
                    "phone": None,
                    "is_email_opt_in": True,
                    "is_sms_opt_in": False,
                }
            ]
        ),  # fmt: skip
    )
    world.tick(T0 + 31 * MIN)
    assert world.received() == []
    assert set(world.steps()["reason"]) == {"unsubscribed"}


# --------------------------------------------------------------------------- exactly once


def test_a_tick_rerun_after_a_crash_sends_nothing_twice(world):
    a, b = treated(world, "cart_abandonment", 2)
    world.customers = [customer(a), customer(b)]
    world.post(*[event(i, c, "add_to_cart", T0, product_id="p1") for i, c in enumerate([a, b])])
    with pytest.raises(RuntimeError, match="simulated crash"):
        world.tick(T0 + 31 * MIN, crash_after_commit=True)
    assert world.received() == []
    world.tick(T0 + 31 * MIN)  # the rerun of the crashed tick
    world.tick(T0 + 32 * MIN)  # and the next tick
    keys = world.keys_sent()
    assert len(keys) == 2 and keys.is_unique
    # a crash after the provider accepted, before the steps were settled: reset them
    world.con.execute("update journeys.steps set status = 'pending' where step_id = 'reminder'")
    world.tick(T0 + 33 * MIN)
    assert len(world.keys_sent()) == 2
    assert set(world.steps().query("step_id == 'reminder'")["status"]) == {"sent"}


def test_replayed_events_start_one_journey(world):
    (cid,) = treated(world, "cart_abandonment", 1)
    world.customers = [customer(cid)]
    cart = event(1, cid, "add_to_cart", T0, product_id="p1")
    world.post(cart)
    assert world.post(cart)["duplicates"] == 1
    # a queue file written twice (a collector crash before its ids were recorded)
    queue = sorted(world.paths.queue_dir.glob("*.parquet"))
    (queue[0].parent / ("track-zz-" + queue[0].name)).write_bytes(queue[0].read_bytes())
    world.post(event(2, cid, "add_to_cart", T0 + 5 * MIN, product_id="p2"))  # same journey
    world.tick(T0 + 40 * MIN)
    assert world.con.execute("select count(*) from journeys.events").fetchall()[0][0] == 2
    assert world.con.execute("select count(*) from journeys.entries").fetchall()[0][0] == 1
    assert len(world.keys_sent()) == 1


def test_results_per_trigger_and_step_with_the_control_group(world):
    from tessera.journeys.results import trigger_funnel, trigger_results

    treated_ids = treated(world, "cart_abandonment", 6)
    control_ids = controls(world, "cart_abandonment", 2)
    everyone = treated_ids + control_ids
    world.customers = [customer(c) for c in everyone]
    world.post(*[event(i, c, "add_to_cart", T0, product_id="p1") for i, c in enumerate(everyone)])
    buyer = treated_ids[0]
    world.post(event(99, buyer, "order", T0 + 10 * MIN, properties={"value": 80.0}))
    world.tick(T0 + MIN)
    world.tick(T0 + 31 * MIN)
    funnel = trigger_funnel(world.con).set_index(["trigger_id", "step_id"])
    reminder = funnel.loc[("cart_abandonment", "reminder")]
    assert (reminder["sent"], reminder["control"], reminder["exited"]) == (5, 2, 1)
    assert reminder["exit_reasons"] == "ordered"
    results = trigger_results(world.con, T0.date() + dt.timedelta(days=8))
    row = results.set_index("campaign_id").loc["trigger_cart_abandonment"]
    assert (row["treatment_n"], row["control_n"]) == (6, 2)
    assert (row["treatment_conversions"], row["control_conversions"]) == (1, 0)
    assert row["treatment_revenue_per_customer"] == pytest.approx(80.0 / 6)
