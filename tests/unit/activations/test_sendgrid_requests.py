"""SendGrid request bodies and batching: valid v3 mail/send, limits, no duplicate address."""

import json

from tessera.activations.providers.base import messages_from_frame, plan_unique_batches, redact
from tessera.activations.providers.sendgrid_email import (
    MAX_PERSONALIZATIONS,
    SendGridProvider,
    build_mail_body,
)
from tessera.activations.sink import sendgrid_errors


def test_batches_hold_at_most_1000_personalizations_and_cover_every_message(messages_factory):
    msgs = messages_from_frame(messages_factory(2500, campaigns=2))
    batches = SendGridProvider("SG.x", "a@b.com").plan_batches(msgs)
    assert max(len(b) for b in batches) <= MAX_PERSONALIZATIONS
    assert sorted(m.key for b in batches for m in b) == sorted(m.key for m in msgs)
    assert all(len({m.campaign_id for m in b}) == 1 for b in batches)


def test_an_address_never_appears_twice_in_one_batch_even_in_other_case(messages_factory):
    df = messages_factory(6)
    df.loc[[1, 3], "address"] = ["Same@Example.com", "same@example.COM"]
    batches = plan_unique_batches(messages_from_frame(df), 1000, group=lambda m: m.campaign_id)
    for batch in batches:
        addresses = [m.address.lower() for m in batch]
        assert len(addresses) == len(set(addresses))
    assert sum(len(b) for b in batches) == 6 and len(batches) == 2


def test_mail_body_is_a_valid_dynamic_template_request(messages_factory):
    msgs = messages_from_frame(messages_factory(1000))
    body = build_mail_body(msgs, "news@shop.example", "Shop")
    assert sendgrid_errors(json.loads(json.dumps(body))) == []
    p = body["personalizations"][0]
    assert set(p) == {"to", "dynamic_template_data", "custom_args"}  # no substitutions
    assert all(isinstance(v, str) for v in p["custom_args"].values())
    assert p["custom_args"]["message_key"] == msgs[0].key
    assert body["template_id"] and "is_multiple" not in json.dumps(body)
    assert body["categories"] == ["tessera", "camp0"]


def test_validator_rejects_what_sendgrid_rejects(messages_factory):
    too_many = build_mail_body(messages_from_frame(messages_factory(1001)), "a@b.com")
    assert sendgrid_errors(too_many)[0]["field"] == "personalizations"
    dup = build_mail_body(messages_from_frame(messages_factory(3)), "a@b.com")
    dup["personalizations"][2]["to"][0]["email"] = dup["personalizations"][0]["to"][0][
        "email"
    ].upper()
    errs = sendgrid_errors(dup)
    assert errs[0]["field"] == "personalizations.2.to.0.email" and "duplicate" in errs[0]["message"]
    missing = {"personalizations": [{"to": [{"email": "a@b.com"}]}]}
    fields = {e["field"] for e in sendgrid_errors(missing)}
    assert {"from.email", "content", "subject"} <= fields
    assert all(set(e) == {"message", "field", "help"} for e in sendgrid_errors(missing))


def test_provider_repr_and_redaction_hide_the_api_key():
    key = "SG.abcdefghijklmnop.qrstuvwxyz0123456789"
    assert key not in repr(SendGridProvider(key, "a@b.com"))
    assert key not in redact(f"Authorization: Bearer {key}")
    assert "***" in redact(f"oops {key} leaked")
