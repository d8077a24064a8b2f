"""Caps count the shop's calendar days (TESSERA_TIMEZONE) on the journey and the daily path alike.

Around midnight: 23:30 UTC on 3 December is 00:30 on 4 December in Berlin (UTC+1 in winter), so
a message at that instant belongs to the campaign date 4 December there.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tessera.campaigns.catalog import Cap, Trigger
from tessera.journeys.engine import read_journey_contacts
from tests.integration.journeys.conftest import customer, event

LATE = dt.datetime(2026, 12, 3, 23, 30)  # naive UTC
BERLIN_DAY = dt.date(2026, 12, 4)
ONE_EMAIL_A_DAY = Cap(id="daily_email", channels=["email"], max_contacts=1, days=1)


def _instant_catalog(world, cap: Cap):
    instant = Trigger.model_validate(
        {
            "id": "instant",
            "entry": {"event": "add_to_cart"},
            "control_share": 0.0,
            "steps": [
                {"id": "now", "wait": "0m", "channel": "email", "template": "em_cart_reminder"}
            ],
        }
    )
    policies = world.catalog.policies.model_copy(update={"caps": [cap]})
    return world.catalog.model_copy(update={"triggers": [instant], "policies": policies})


@pytest.mark.parametrize(
    ("timezone", "reason"),
    # in UTC it is still 3 December: the campaign date of the 4th reads as a later date whose
    # lock is still open, not as today's contact
    [("Europe/Berlin", "cap"), ("UTC", "duration_period")],
)
def test_a_daily_email_of_the_shops_date_caps_a_journey_email_just_after_its_midnight(
    world, timezone, reason
):
    world.catalog = _instant_catalog(world, ONE_EMAIL_A_DAY)
    world.customers = [customer("c1")]
    # the daily matrix e-mailed c1 on campaign date 4 December (a date in the shop's timezone)
    world.history = [
        {"as_of_date": BERLIN_DAY, "customer_id": "c1", "campaign_id": "daily_deals",
         "channel": "email", "is_control": False, "locked_until": BERLIN_DAY}
    ]  # fmt: skip
    world.post(event(1, "c1", "add_to_cart", LATE, product_id="p1"))
    world.tick(LATE + dt.timedelta(minutes=1), timezone=timezone)
    steps = world.steps()
    assert steps["reason"].tolist() == [reason]
    assert world.received() == []


@pytest.mark.parametrize(
    ("timezone", "day"),
    [("Europe/Berlin", BERLIN_DAY), ("UTC", dt.date(2026, 12, 3))],
)
def test_a_journey_email_sent_just_after_the_shops_midnight_counts_on_that_date_in_the_matrix(
    world, timezone, day
):
    from tessera.campaigns.engine import assign_campaigns
    from tests.unit.campaigns.campaign_builders import make_catalog, membership

    world.catalog = _instant_catalog(world, ONE_EMAIL_A_DAY)
    world.customers = [customer("c1")]
    world.post(event(1, "c1", "add_to_cart", LATE, product_id="p1"))
    world.tick(LATE + dt.timedelta(minutes=1), timezone=timezone)
    assert len(world.received()) == 1
    contacts = read_journey_contacts(world.data_dir)
    assert contacts["as_of_date"].dt.date.tolist() == [day]
    # two e-mails at most over two days: on 5 December the window is the 4th and the 5th
    daily = make_catalog(
        [{"id": "promo", "target_groups": ["g"]}],
        caps=[{"id": "two_days", "channels": ["email"], "max_contacts": 1, "days": 2}],
    )
    result = assign_campaigns(
        membership({"c1": ["g"]}), daily, BERLIN_DAY + dt.timedelta(1), contacts
    )
    reasons = result.exclusions.to_pandas()["reason"].tolist()
    assert reasons == (["cap"] if day == BERLIN_DAY else [])
