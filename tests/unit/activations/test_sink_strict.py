"""The local sink refuses what SendGrid's documented v3 mail/send rules refuse."""

from __future__ import annotations

import copy

import pytest

from tessera.activations.providers.base import messages_from_frame
from tessera.activations.providers.sendgrid_email import build_mail_body
from tessera.activations.sink import address_problem, sendgrid_errors

NOW = 1_800_000_000.0


@pytest.fixture
def body(messages_factory) -> dict:
    return build_mail_body(messages_from_frame(messages_factory(3)), "news@shop.example")


def _fields(body: dict, **kw) -> list[str | None]:
    return [e["field"] for e in sendgrid_errors(body, now=NOW, **kw)]


def test_the_request_tessera_builds_is_accepted(body) -> None:
    assert sendgrid_errors(body, now=NOW) == []


@pytest.mark.parametrize("template_id", ["em_welcome", "d-123", "d-" + "G" * 32, "tessera-x"])
def test_template_ids_that_are_not_dynamic_templates_are_refused(body, template_id) -> None:
    body["template_id"] = template_id
    errors = sendgrid_errors(body, now=NOW)
    messages = " ".join(e["message"] for e in errors)
    assert "valid template id" in messages
    assert "Cannot use dynamic template data with a legacy template ID" in messages
    # named on the request, not on one personalization: the whole request is wrong
    assert {e["field"] for e in errors} == {"template_id"}
    assert all(set(e) == {"message", "field", "help"} for e in errors)


def test_legacy_template_without_dynamic_data_is_fine_but_with_it_is_not(body) -> None:
    body["template_id"] = "13b8f94f-bcae-4ec6-b752-70d6cb59f932"
    assert _fields(body) == ["template_id"]
    for p in body["personalizations"]:
        del p["dynamic_template_data"]
    assert _fields(body) == []


@pytest.mark.parametrize(
    "address",
    [
        "a" * 65 + "@shop.example",  # local part over 64
        "ann@" + ".".join(["d" * 60] * 5) + ".com",  # over 254 in all
        " ann@shop.com ",
        "ann@@shop.com",
        "ann@shop",
        "ann..x@shop.com",
        "ann@-shop.com",
        "ann@shop.123",
    ],
)
def test_invalid_or_too_long_addresses_are_refused(body, address) -> None:
    body["personalizations"][1]["to"][0]["email"] = address
    assert _fields(body) == ["personalizations.1.to.0.email"]


def test_valid_addresses_pass() -> None:
    for ok in ["ann@shop.com", "ann.o'neil+x@mail.shop.co.uk", "a" * 64 + "@s.io"]:
        assert address_problem(ok) is None, ok


def test_categories_must_be_unique_at_most_ten_and_short(body) -> None:
    body["categories"] = ["tessera", "tessera"]
    assert _fields(body) == ["categories"]
    body["categories"] = [f"c{i}" for i in range(11)]
    assert _fields(body) == ["categories"]
    body["categories"] = ["x" * 256]
    assert _fields(body) == ["categories.0"]


def test_a_campaign_called_tessera_sends_unique_categories(messages_factory) -> None:
    frame = messages_factory(2)
    frame["campaign_id"] = "tessera"
    body = build_mail_body(messages_from_frame(frame), "news@shop.example")
    assert body["categories"] == ["tessera"] and sendgrid_errors(body, now=NOW) == []


def test_custom_args_must_stay_under_10000_bytes(body) -> None:
    body["personalizations"][2]["custom_args"]["note"] = "x" * 10_000
    assert _fields(body) == ["personalizations.2.custom_args"]


def test_reserved_headers_are_refused(body) -> None:
    body["headers"] = {"X-Campaign": "ok", "Content-Type": "text/plain", "x-sg-id": "1"}
    assert _fields(body) == ["headers.Content-Type", "headers.x-sg-id"]


def test_duplicate_address_in_one_request_is_refused(body) -> None:
    body["personalizations"][2]["to"][0]["email"] = body["personalizations"][0]["to"][0][
        "email"
    ].upper()
    assert _fields(body) == ["personalizations.2.to.0.email"]


def test_personalization_and_recipient_limits(body) -> None:
    many = copy.deepcopy(body)
    many["personalizations"] = [
        {"to": [{"email": f"c{i}@shop.example"}], "dynamic_template_data": {}} for i in range(1001)
    ]
    assert _fields(many) == ["personalizations"]
    wide = copy.deepcopy(body)
    wide["personalizations"] = [
        {"to": [{"email": f"c{i}.{j}@shop.example"} for j in range(2)]} for i in range(501)
    ]
    assert _fields(wide) == ["personalizations"]


def test_send_at_and_batch_id_follow_the_scheduling_rules(body) -> None:
    body["send_at"] = int(NOW + 73 * 3600)
    body["batch_id"] = "made-up"
    assert _fields(body, known_batches={"real"}) == ["send_at", "batch_id"]
    body["send_at"], body["batch_id"] = int(NOW + 1200), "real"
    assert _fields(body, known_batches={"real"}) == []


def test_an_address_sendgrid_would_refuse_fails_alone_before_any_request(
    messages_factory,
) -> None:
    from tessera.activations.providers.base import PermanentError
    from tessera.activations.providers.sendgrid_email import SendGridProvider
    from tessera.activations.sender import RateGate, RetryPolicy, deliver_batch

    frame = messages_factory(3)
    frame.loc[1, "address"] = "x" * 330 + "@shop.example"
    batch = messages_from_frame(frame)
    provider = SendGridProvider("SG.k.abcdefghijkl", "news@shop.example", host="http://127.0.0.1:9")
    with pytest.raises(PermanentError) as err:
        provider.send_batch(batch)
    assert set(err.value.per_message) == {batch[1].key}

    sent_batches = []

    class Recording(SendGridProvider):
        def _post(self, batch, body):  # no network: record what would leave
            sent_batches.append([p["to"][0]["email"] for p in body["personalizations"]])
            return {m.key: "id" for m in batch}

    rec = Recording("SG.k.abcdefghijkl", "news@shop.example", host="http://127.0.0.1:9")
    out = deliver_batch(rec, batch, "b", RetryPolicy(), RateGate(), lambda _s: None)
    assert set(out.failed) == {batch[1].key} and len(out.sent) == 2
    assert sent_batches == [[batch[0].address, batch[2].address]]


def test_the_sink_answers_a_bad_content_length(tmp_path) -> None:
    import socket

    from tessera.activations.sink import running_sink

    with running_sink(tmp_path, with_events=False) as sink:
        host, port = sink.url.split("//")[1].split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"POST /v3/mail/send HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
            reply = sock.recv(4096).decode("latin-1")
    assert reply.startswith("HTTP/1.1 400")
