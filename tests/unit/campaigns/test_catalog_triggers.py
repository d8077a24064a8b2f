"""The catalog's triggers: validated like the rest, errors naming trigger, field and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tessera.campaigns.catalog import load_catalog, parse_catalog, wait_minutes
from tessera.campaigns.errors import CatalogError

DEMO = Path(__file__).resolve().parents[3] / "src" / "tessera" / "campaigns" / "catalog.yml"

BASE = """\
version: 1
dimensions:
  - id: tenure
    attribute: tenure_days
    bins: [7]
    labels: [new, old]
target_groups:
  - id: everyone
    where:
      tenure_days: {ge: 0}
templates:
  em_cart: {sendgrid: d-00000000000000000000000000000001}
triggers:
  - id: cart
    entry:
      event: add_to_cart
      event_where:
        category: {eq: shoes}
    customer:
      tenure_days: {ge: 1}
    steps:
      - id: reminder
        wait: 30m
        channel: email
        template: em_cart
      - id: incentive
        wait: 1d
        channel: email
        template: em_cart
        when:
          churn_probability: {gt: 0.5}
    control_share: 0.1
"""


def problems(text: str) -> list[str]:
    with pytest.raises(CatalogError) as info:
        parse_catalog(text, source="catalog.yml")
    return info.value.problems


def line_of(text: str, needle: str) -> int:
    return next(i + 1 for i, ln in enumerate(text.splitlines()) if needle in ln)


def test_demo_catalog_has_the_four_journeys():
    catalog = load_catalog(DEMO)
    ids = {t.id: t for t in catalog.triggers}
    assert set(ids) == {
        "cart_abandonment",
        "back_in_stock",
        "loyalty_tier_entry",
        "browse_remarketing",
    }
    cart = ids["cart_abandonment"]
    assert [s.wait_min for s in cart.steps] == [30, 1440, 1440]
    assert cart.steps[1].when and cart.exit.ordered
    assert ids["back_in_stock"].entry.audience is not None
    assert ids["back_in_stock"].key_by == ["product_id"]
    assert ids["loyalty_tier_entry"].entry.segment == "gold_tier"
    assert all(0 < t.control_share < 1 for t in catalog.triggers)


def test_base_triggers_are_valid():
    catalog = parse_catalog(BASE)
    assert catalog.triggers[0].campaign_id == "trigger_cart"


@pytest.mark.parametrize(
    ("old", "new", "expected", "needle"),
    [
        ("wait: 30m", "wait: soon", "trigger cart: steps.0.wait", "wait: soon"),
        ("event: add_to_cart", "event: purchase", "trigger cart: entry.event", "event: purchase"),
        ("category: {eq: shoes}", "colour: {eq: red}", "unknown event field 'colour'", "colour"),
        (
            "tenure_days: {ge: 1}",
            "shoe_size: {ge: 1}",
            "customer.shoe_size unknown attribute",
            "shoe_size",
        ),
        (
            "churn_probability: {gt: 0.5}",
            "churn_probability: {eq: yes}",
            "steps.1.when.churn_probability",
            "churn_probability",
        ),
        ("control_share: 0.1", "control_share: 2", "trigger cart: control_share", "control_share"),
        (
            "template: em_cart\n      - id: incentive",
            "template: em_nope\n      - id: incentive",
            "steps.0.template 'em_nope' is not a SendGrid",
            "em_nope",
        ),
    ],
)
def test_trigger_errors_name_the_field_and_line(old, new, expected, needle):
    text = BASE.replace(old, new, 1)
    assert text != BASE
    found = problems(text)
    hits = [p for p in found if expected in p]
    assert hits, found
    assert hits[0].endswith(f"(catalog.yml:{line_of(text, needle)})"), hits[0]


def test_entry_needs_exactly_one_kind_and_a_known_segment():
    both = BASE.replace("event: add_to_cart", "event: add_to_cart\n      segment: everyone")
    assert any("needs exactly one of event or segment" in p for p in problems(both))
    unknown = BASE.replace(
        "event: add_to_cart\n      event_where:\n        category: {eq: shoes}",
        "segment: nobody",
    )
    assert any("entry.segment unknown target group 'nobody'" in p for p in problems(unknown))


def test_inventory_entries_need_an_audience():
    text = BASE.replace("event: add_to_cart", "event: inventory").replace(
        "category: {eq: shoes}", "in_stock: {eq: true}"
    )
    assert any("needs an audience" in p for p in problems(text))


def test_steps_in_order_of_wait_and_distinct_ids():
    text = BASE.replace("wait: 30m", "wait: 2d").replace("id: incentive", "id: reminder")
    found = problems(text)
    assert any("steps must be in order of their wait" in p for p in found)
    assert any("duplicate step id 'reminder'" in p for p in found)


def test_waits_in_minutes_hours_days():
    assert [wait_minutes(w) for w in ("0m", "30m", "4h", "1d")] == [0, 30, 240, 1440]
    with pytest.raises(ValueError):
        wait_minutes("1w")
