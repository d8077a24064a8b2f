"""Outbound messages: keys, consent, suppression, duplicates and rendering."""

import datetime as dt
import json

import pandas as pd

from tessera.activations.content import ChannelContent, content_frame
from tessera.activations.keys import message_key
from tessera.activations.outbound import build_outbound

D = dt.date(2025, 3, 1)


def _inputs(**overrides):
    ids = ["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"]
    assignments = pd.DataFrame(
        {
            "as_of_date": D,
            "customer_id": ids,
            "campaign_id": "welcome",
            "channel": ["email", "email", "email", "sms", "email", "email", "email", "email"],
            "micro_segment_id": "m1",
            "is_control": [False, False, False, False, True, False, False, False],
            "priority": 10,
            "duration_days": 7,
            "locked_until": D + dt.timedelta(days=7),
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "email": [
                "Ann@Shop.com",
                "ann@shop.com",
                "not-an-email",
                "d@x.com",
                "e@x.com",
                "f@x.com",
                "g@x.com",
                "h@x.com",
            ],
            "phone": "+4915112345678",
            "first_name": ["Ann", "Bo", "Cy", "Di", "Ed", "Fi", None, "Hu"],
            "is_email_opt_in": [True, True, True, True, True, True, True, False],
            "is_sms_opt_in": [True, True, True, False, True, True, True, True],
            "is_email_valid": True,
            "is_phone_valid": True,
        }
    )
    features = pd.DataFrame({"customer_id": ids, "top_category": "ski"})
    scores = pd.DataFrame(
        {
            "customer_id": ["c1"],
            "top_drivers": ['[{"feature":"days_since_last_order","contribution":0.4}]'],
        }
    )
    suppressions = pd.DataFrame(
        {
            "customer_id": ["c6", "c7"],
            "channel": ["email", "email"],
            "event": ["unsubscribe", "bounce"],
            # c7's bounce happens on D itself: not visible to partition D.
            "occurred_at": [pd.Timestamp("2025-02-20"), pd.Timestamp("2025-03-01 08:00")],
        }
    )
    content = content_frame([ChannelContent("welcome", "email", "d-abc", "10% off")])
    args = dict(
        assignments=assignments,
        customers=customers,
        features=features,
        scores=scores,
        suppressions=suppressions,
        content=content,
    )
    args.update(overrides)
    return args


def test_python_and_sql_message_keys_agree():
    messages, _ = build_outbound(D, **_inputs())
    row = messages[messages.customer_id == "c1"].iloc[0]
    assert row.message_key == message_key("welcome", "c1", "2025-03-01", "email")


def test_each_exclusion_reason_is_recorded():
    messages, excluded = build_outbound(D, **_inputs())
    reasons = dict(zip(excluded.customer_id, excluded.reason, strict=True))
    assert reasons == {
        "c2": "duplicate_address",  # same address as c1 up to case
        "c3": "invalid_contact",
        "c4": "no_consent",
        "c6": "unsubscribed",
        "c8": "no_consent",
    }
    assert set(messages.customer_id) == {"c1", "c7"}


def test_control_customers_never_get_a_message_or_exclusion():
    messages, excluded = build_outbound(D, **_inputs())
    assert "c5" not in set(messages.customer_id) | set(excluded.customer_id)


def test_suppression_counts_only_events_before_the_date():
    messages, _ = build_outbound(D, **_inputs())
    assert "c7" in set(messages.customer_id)
    later, excl = build_outbound(
        D + dt.timedelta(days=1),
        **_inputs(assignments=_inputs()["assignments"].assign(as_of_date=D + dt.timedelta(days=1))),
    )
    assert dict(zip(excl.customer_id, excl.reason, strict=True))["c7"] == "bounced"


def test_spam_report_suppresses_every_channel():
    sup = pd.DataFrame(
        {
            "customer_id": ["c4"],
            "channel": ["email"],
            "event": ["spam_report"],
            "occurred_at": [pd.Timestamp("2025-01-01")],
        }
    )
    customers = _inputs()["customers"].assign(is_sms_opt_in=True)
    _, excluded = build_outbound(D, **_inputs(suppressions=sup, customers=customers))
    assert dict(zip(excluded.customer_id, excluded.reason, strict=True))["c4"] == "spam_reported"


def test_personalization_is_rendered_from_contact_features_scores_and_offer():
    messages, _ = build_outbound(D, **_inputs())
    ann = messages[messages.customer_id == "c1"].iloc[0]
    data = json.loads(ann.personalization)
    assert (
        ann.template_id == "d-abc" and ann.address == "ann@shop.com" and ann.provider == "sendgrid"
    )
    assert (
        data["first_name"] == "Ann" and data["top_category"] == "ski" and data["offer"] == "10% off"
    )
    assert data["risk_drivers"] == ["days_since_last_order"]
    assert (
        json.loads(messages[messages.customer_id == "c7"].iloc[0].personalization)["first_name"]
        == "there"
    )


def test_output_is_deterministic():
    a = build_outbound(D, **_inputs())
    b = build_outbound(D, **_inputs())
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[1], b[1])
