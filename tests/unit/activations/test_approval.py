"""An approval binds every field that leaves; a refusal says what changed."""

import datetime as dt

import pandas as pd
import pytest

from tessera.activations.approval import (
    approval_manifest,
    check_approval,
    diff_manifests,
    fingerprint,
)
from tessera.activations.errors import SendBlockedError

D = dt.date(2025, 3, 1)


def test_identical_messages_pass_in_any_order(messages_factory):
    msgs = messages_factory(20)
    approved = approval_manifest(msgs)
    check_approval(D, msgs.sample(frac=1, random_state=1), approved)
    assert fingerprint(approved) == fingerprint(approval_manifest(msgs.iloc[::-1]))


def test_the_fingerprint_of_a_recorded_approval_stays_the_same():
    # Approvals recorded earlier store this hash: how it is computed must not drift.
    manifest = pd.DataFrame(
        {
            "message_key": ["k2", "k1"],
            "address": ["a2", "a1"],
            "template_id": ["t", "t"],
            "personalization": ["p2", "p1"],
            "channel": ["email", "email"],
            "provider": ["sendgrid", "sendgrid"],
        }
    )
    assert fingerprint(manifest) == "04418aeaac9f1b6e3cbb7cb4fb9eac83"


@pytest.mark.parametrize(
    ("field", "value", "label"),
    [
        ("address", "attacker@evil.example", "addresses"),
        ("template_id", "d-" + "f" * 32, "template ids"),
        ("personalization", '{"offer":"90% off"}', "personalizations"),
        ("channel", "sms", "channels"),
        ("provider", "twilio", "providers"),
    ],
)
def test_a_change_to_any_bound_field_is_refused_and_named(messages_factory, field, value, label):
    msgs = messages_factory(10)
    approved = approval_manifest(msgs)
    changed = msgs.copy()
    changed.loc[changed.index[:3], field] = value
    assert fingerprint(approval_manifest(changed)) != fingerprint(approved)
    with pytest.raises(
        SendBlockedError, match=rf"since approval at 2025-03-01 06:00 by ops: 3 {label} changed\."
    ):
        check_approval(D, changed, approved, approved_at="2025-03-01 06:00", approved_by="ops")


def test_the_refusal_counts_each_field_and_added_or_removed_messages(messages_factory):
    msgs = messages_factory(10)
    approved = approval_manifest(msgs)
    changed = msgs.copy()
    changed.loc[changed.index[:3], "address"] = "attacker@evil.example"
    changed.loc[changed.index[5], "template_id"] = "d-" + "1" * 32
    changed = changed.drop(changed.index[9])
    extra = messages_factory(12).iloc[[11]]
    changed = pd.concat([changed, extra])
    diff = diff_manifests(approved, approval_manifest(changed))
    assert (
        diff.describe() == "3 addresses, 1 template id changed; 1 message added, 1 message removed"
    )


def test_no_approval_is_awaiting_approval(messages_factory):
    with pytest.raises(SendBlockedError, match="Awaiting approval for 2025-03-01"):
        check_approval(D, messages_factory(2), None)
