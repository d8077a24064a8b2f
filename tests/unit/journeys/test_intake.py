"""POST /v1/track: keys per source, size limit, per-event reasons, atomic landing, replays."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from tessera.activations.events import EventReceiver, ExtraRoute, running_events
from tessera.journeys.intake import (
    TRACK_PATH,
    TrackConfigError,
    TrackReceiver,
    parse_track_keys,
    queue_files,
)
from tessera.journeys.paths import JourneyPaths

KEY = "web-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def receiver(tmp_path: Path) -> TrackReceiver:
    return TrackReceiver(tmp_path, {"web": KEY, "app": "app-key-0123456789abcdef"})


def _cart(n: int, **extra: object) -> dict:
    return {
        "event_id": f"e{n}",
        "customer_id": f"c{n}",
        "type": "add_to_cart",
        "product_id": "p1",
        "category": "shoes",
        "timestamp": time.time() - 60,
        **extra,
    }


def _post(receiver: TrackReceiver, events: list, headers: dict | None = None) -> tuple[int, dict]:
    raw = json.dumps({"events": events}).encode()
    return receiver.handle(raw, AUTH if headers is None else headers)


def test_good_events_land_in_the_queue_and_the_landing_folder(receiver, tmp_path):
    status, reply = _post(receiver, [_cart(1), _cart(2), {**_cart(3), "type": "order"}])
    assert status == 200 and reply["accepted"] == 3
    queue = pd.read_parquet(queue_files(tmp_path)[0])
    assert sorted(queue["event_id"]) == ["e1", "e2", "e3"]
    assert set(queue["source"]) == {"web"}
    landed = pd.concat(pd.read_parquet(p) for p in (tmp_path / "landing" / "events").iterdir())
    # orders are not an event type of the landing contract: only the queue has them
    assert list(landed.columns) == ["customer_id", "occurred_at", "event_type", "category"]
    assert sorted(landed["customer_id"]) == ["c1", "c2"]
    assert not [p for p in JourneyPaths.of(tmp_path).queue_dir.iterdir() if p.name.startswith(".")]


def test_unauthenticated_posts_are_refused_before_reading(receiver, tmp_path):
    assert _post(receiver, [_cart(1)], headers={})[0] == 401
    assert (
        _post(receiver, [_cart(1)], headers={"Authorization": "Bearer wrong-key-xxxxxxxx"})[0]
        == 401
    )
    assert receiver.precheck(AUTH, receiver.max_body_bytes + 1)[0] == 413
    assert queue_files(tmp_path) == []
    assert TrackReceiver(tmp_path, {}).precheck(AUTH, 10)[0] == 401


def test_malformed_events_are_rejected_with_reasons_and_kept(receiver, tmp_path):
    bad = [
        {**_cart(1), "type": "purchase_maybe"},
        {**_cart(2), "customer_id": None},
        {**_cart(3), "timestamp": "yesterday"},
        {**_cart(4), "timestamp": "2026-12-03T10:00:00"},
        {**_cart(5), "product_id": None},
        {"type": "inventory", "product_id": "p1", "in_stock": "yes", "at": time.time()},
        "not an object",
    ]
    status, reply = _post(receiver, [*bad, _cart(9)])
    assert status == 200 and reply["accepted"] == 1
    reasons = {r["index"]: r["reason"] for r in reply["rejected"]}
    assert "type must be one of" in reasons[0]
    assert reasons[1] == "missing customer_id"
    assert "ISO 8601" in reasons[2]
    assert "no time zone" in reasons[3]
    assert reasons[4] == "missing product_id"
    assert "in_stock must be true or false" in reasons[5]
    assert "JSON object" in reasons[6]
    kept = [
        json.loads(line) for line in JourneyPaths.of(tmp_path).rejects_path.read_text().splitlines()
    ]
    assert [k["index"] for k in kept] == list(range(7))
    assert all(
        KEY not in line for line in JourneyPaths.of(tmp_path).rejects_path.read_text().splitlines()
    )


def test_replayed_events_are_not_accepted_twice(receiver, tmp_path):
    _post(receiver, [_cart(1), _cart(2)])
    status, reply = _post(receiver, [_cart(1), _cart(2), _cart(3)])
    assert reply == {"accepted": 1, "duplicates": 2, "file": reply["file"]}
    # a new receiver (restart) remembers what was accepted
    again = TrackReceiver(tmp_path, {"web": KEY})
    assert _post(again, [_cart(1)])[1]["duplicates"] == 1
    ids = pd.concat(pd.read_parquet(p) for p in queue_files(tmp_path))["event_id"]
    assert sorted(ids) == ["e1", "e2", "e3"]


def test_inventory_business_events_are_accepted(receiver, tmp_path):
    event = {
        "type": "inventory",
        "product_id": "p1",
        "in_stock": True,
        "quantity": 4,
        "at": time.time(),
    }
    assert _post(receiver, [event])[1]["accepted"] == 1
    row = pd.read_parquet(queue_files(tmp_path)[0]).iloc[0]
    assert row["event_type"] == "inventory" and bool(row["in_stock"]) and row["quantity"] == 4
    assert not (tmp_path / "landing" / "events").exists()


def test_track_keys_are_parsed_and_errors_do_not_show_keys():
    assert parse_track_keys("web=aaaaaaaaaaaaaaaa, app=bbbbbbbbbbbbbbbb") == {
        "web": "aaaaaaaaaaaaaaaa",
        "app": "bbbbbbbbbbbbbbbb",
    }
    with pytest.raises(TrackConfigError) as err:
        parse_track_keys("web=short")
    assert "short" not in str(err.value)


def test_the_event_server_serves_track_beside_the_provider_route(receiver, tmp_path):
    provider = EventReceiver(tmp_path / "landing", "unused-key")
    with running_events(provider, track=ExtraRoute(TRACK_PATH, receiver)) as url:
        base = url.rsplit("/events", 1)[0]
        body = json.dumps([_cart(1)]).encode()
        request = urllib.request.Request(base + TRACK_PATH, data=body, headers=AUTH, method="POST")
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert json.loads(resp.read())["accepted"] == 1
        unsigned = urllib.request.Request(url, data=b"[]", method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(unsigned, timeout=5)
        assert err.value.code == 401  # the provider route still wants its signature
