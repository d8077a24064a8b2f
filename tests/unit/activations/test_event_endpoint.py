"""The event endpoint refuses before reading, validates per event, de-duplicates, always replies."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pandas as pd
import pytest

from tessera.activations.events import EventReceiver, landed_event_files, running_events
from tessera.activations.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    load_or_create_private_key,
    public_key_b64,
    sign_payload,
)

NOW = time.time()


@pytest.fixture
def key(tmp_path: Path):
    return load_or_create_private_key(tmp_path / "key.pem")


@pytest.fixture
def receiver(tmp_path: Path, key) -> EventReceiver:
    return EventReceiver(tmp_path / "landing", public_key_b64(key))


def _signed(key, raw: bytes, ts: str | None = None) -> dict[str, str]:
    ts = ts or str(int(time.time()))
    return {SIGNATURE_HEADER: sign_payload(key, ts, raw), TIMESTAMP_HEADER: ts}


def _event(name: str, n: int, **extra: object) -> dict:
    return {
        "event": name,
        "message_key": f"k{n}",
        "customer_id": f"c{n}",
        "campaign_id": "winback",
        "channel": "email",
        "timestamp": int(NOW) - 3600,
        "sg_event_id": f"ev-{name}-{n}",
        **extra,
    }


def _raw_request(url: str, head: str, body: bytes = b"", timeout: float = 5.0) -> str:
    """Send a hand-written request (headers may lie about the body) and return the reply."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n" + body)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b"}" in chunk:
                break
    return b"".join(chunks).decode("latin-1")


def test_unsigned_400_mb_post_is_refused_without_reading_the_body(receiver) -> None:
    with running_events(receiver) as url:
        head = (
            "POST /events/sendgrid HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {400 * 1024 * 1024}"
        )
        # No body is sent at all: an endpoint that reads first never answers.
        reply = _raw_request(url, head)
    assert reply.startswith("HTTP/1.1 401"), reply[:200]


def test_signed_post_over_the_size_limit_gets_413_before_the_body(receiver, key) -> None:
    headers = _signed(key, b"[]")
    with running_events(receiver) as url:
        head = (
            "POST /events/sendgrid HTTP/1.1\r\nHost: x\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + f"Content-Length: {receiver.max_body_bytes + 1}"
        )
        reply = _raw_request(url, head)
    assert reply.startswith("HTTP/1.1 413"), reply[:200]


@pytest.mark.parametrize(
    ("length_header", "status"),
    [("Content-Length: abc", "400"), ("Content-Length: -5", "400"), ("", "411")],
)
def test_bad_or_missing_content_length_gets_a_reply(receiver, length_header, status) -> None:
    with running_events(receiver) as url:
        head = "POST /events/sendgrid HTTP/1.1\r\nHost: x" + (
            f"\r\n{length_header}" if length_header else ""
        )
        reply = _raw_request(url, head)
    assert reply.startswith(f"HTTP/1.1 {status}"), reply[:200]


def test_one_bad_event_does_not_cost_the_valid_unsubscribe_beside_it(receiver, key) -> None:
    events = [
        _event("unsubscribe", 1),
        "not an object",
        {k: v for k, v in _event("open", 2).items() if k != "timestamp"},
        _event("click", 3, timestamp=99_999_999_999_999),
        _event("conversion", 4, revenue="12,50"),
        _event("conversion", 5, revenue="NaN"),
        _event("processed", 6),  # a delivery internal: ignored, not rejected
    ]
    raw = json.dumps(events).encode()
    status, reply = receiver.handle(raw, _signed(key, raw))
    assert status == 200
    assert reply["landed"] == 1 and reply["ignored"] == 1
    assert [r["index"] for r in reply["rejected"]] == [1, 2, 3, 4, 5]
    assert "revenue" in reply["rejected"][3]["reason"]
    (landed,) = landed_event_files(receiver.landing_dir)
    frame = pd.read_parquet(landed)
    assert frame[["message_id", "event"]].values.tolist() == [["k1", "unsubscribe"]]
    rejects = receiver.rejects_path.read_text().splitlines()
    assert len(rejects) == 5 and "12,50" in rejects[3]


def test_replayed_signed_post_is_not_taken_twice(receiver, key) -> None:
    raw = json.dumps([_event("unsubscribe", 1), _event("open", 2)]).encode()
    headers = _signed(key, raw)
    assert receiver.handle(raw, headers)[1]["landed"] == 2
    # the very same signed post within the tolerance window
    assert receiver.handle(raw, headers) == (200, {"landed": 0, "replayed": True})
    # the same events signed again (a provider's retry): de-duplicated by sg_event_id
    status, reply = receiver.handle(raw, _signed(key, raw, str(int(time.time()) + 1)))
    assert status == 200 and reply["landed"] == 0 and reply["duplicates"] == 2
    assert len(landed_event_files(receiver.landing_dir)) == 1


def test_event_ids_survive_a_restart_of_the_endpoint(receiver, key) -> None:
    raw = json.dumps([_event("bounce", 1)]).encode()
    assert receiver.handle(raw, _signed(key, raw))[1]["landed"] == 1
    again = EventReceiver(receiver.landing_dir, receiver.public_key)
    reply = again.handle(raw, _signed(key, raw, str(int(time.time()) + 2)))[1]
    assert reply["landed"] == 0 and reply["duplicates"] == 1


def test_an_internal_failure_still_gets_an_http_reply(receiver, key, monkeypatch) -> None:
    def boom(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(receiver, "_land", boom)
    raw = json.dumps([_event("open", 1)]).encode()
    headers = _signed(key, raw)
    with running_events(receiver) as url:
        head = (
            "POST /events/sendgrid HTTP/1.1\r\nHost: x\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + f"Content-Length: {len(raw)}"
        )
        reply = _raw_request(url, head, raw)
    assert reply.startswith("HTTP/1.1 500"), reply[:200]
    assert "disk full" not in reply
