"""The event collector behind ``POST /v1/track``: authentication, per-event validation, landing.

A post is a JSON object ``{"events": [...]}`` (or a bare array) of shop events::

    {"event_id": "e-1", "customer_id": "c1", "type": "add_to_cart", "product_id": "p9",
     "category": "shoes", "timestamp": "2026-12-03T10:00:00Z", "properties": {"value": 59.0}}

and of stock business events (``type: inventory``: product_id, in_stock, quantity, at).

- Authentication: ``Authorization: Bearer <key>`` (or ``X-Tessera-Key``), one key per source
  from ``TESSERA_TRACK_KEYS`` (``web=KEY1,app=KEY2``). Keys are compared in constant time and
  never logged; the source's name is what the queue records.
- A body over the size limit is refused (413) before it is read.
- Each event is checked on its own: rejected ones are answered with their index and reason and
  appended to ``journeys/rejects.jsonl``; the good ones beside them are kept.
- Good events are written atomically (temp file + rename) to the trigger queue
  (``journeys/queue/``) and, for the event types of the landing contract, to
  ``landing/events/`` so the daily warehouse sees them too.
- Event ids already accepted are not accepted again (a replayed or retried post is harmless).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tessera.activations.events import _append_lines, write_atomic_parquet
from tessera.journeys.paths import JourneyPaths

log = logging.getLogger(__name__)

TRACK_PATH = "/v1/track"
TRACK_KEYS_VAR = "TESSERA_TRACK_KEYS"
#: Posts larger than this are refused before their body is read (a site batches far less).
MAX_TRACK_BODY_BYTES = 1024 * 1024
MAX_EVENTS_PER_POST = 5_000
#: Event types of the landing contract's events table (landed for the daily warehouse too).
LANDING_EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "search", "app_open")
#: Accepted beyond them: orders (journeys exit on them) and stock business events.
EVENT_TYPES = (*LANDING_EVENT_TYPES, "order", "inventory")
QUEUE_COLUMNS = [
    "event_id",
    "source",
    "event_type",
    "customer_id",
    "product_id",
    "category",
    "occurred_at",
    "received_at",
    "in_stock",
    "quantity",
    "properties",
]
LANDING_COLUMNS = ["customer_id", "occurred_at", "event_type", "category"]
FILE_PREFIX = "track-"
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
MAX_FUTURE = dt.timedelta(days=1)
_MAX_TEXT = 200
_MAX_REJECT_CHARS = 2_000


class TrackRejected(ValueError):
    """One event of a post is malformed; the reason goes into the reply and the rejects file."""


class TrackConfigError(ValueError):
    """TESSERA_TRACK_KEYS cannot be read as ``source=key`` pairs."""


def parse_track_keys(text: str | None) -> dict[str, str]:
    """``web=KEY1,app=KEY2`` -> {source: key}. The error names the entry, never a key."""
    keys: dict[str, str] = {}
    for i, part in enumerate(p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        source, sep, key = part.partition("=")
        if not sep or not source.strip() or len(key.strip()) < 16:
            raise TrackConfigError(
                f"{TRACK_KEYS_VAR} entry #{i + 1} must be source=key with a key of at least 16 "
                "characters (e.g. web=<random key>,app=<another key>)"
            )
        keys[source.strip()] = key.strip()
    return keys


def track_event_id(event: Mapping) -> str:
    """The sender's ``event_id``, else a hash of the event's content (stable on replay)."""
    given = event.get("event_id")
    if isinstance(given, str) and given.strip():
        return given.strip()[:_MAX_TEXT]
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _text(event: Mapping, name: str, required: bool) -> str | None:
    value = event.get(name)
    if value is None or value == "":
        if required:
            raise TrackRejected(f"missing {name}")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TrackRejected(f"{name} must be a string, got {type(value).__name__}")
    text = str(value).strip()
    if not text or len(text) > _MAX_TEXT:
        raise TrackRejected(f"{name} must be 1 to {_MAX_TEXT} characters")
    return text


def _time(value: object, name: str, now: dt.datetime) -> dt.datetime:
    if value is None or value == "":
        raise TrackRejected(f"missing {name}")
    if isinstance(value, bool):
        raise TrackRejected(f"{name} must be ISO 8601 or Unix seconds, got {value!r}")
    try:
        if isinstance(value, int | float):
            if not math.isfinite(value):
                raise ValueError
            at = dt.datetime.fromtimestamp(float(value), dt.UTC)
        elif isinstance(value, str):
            at = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            if at.tzinfo is None:
                raise TrackRejected(f"{name} {value!r} has no time zone (add Z or +hh:mm)")
        else:
            raise ValueError
    except TrackRejected:
        raise
    except (ValueError, OverflowError, OSError):
        raise TrackRejected(f"{name} must be ISO 8601 or Unix seconds, got {value!r}") from None
    if at < EARLIEST or at > now + MAX_FUTURE:
        raise TrackRejected(f"{name} {value!r} is not plausible (before 2000 or over a day ahead)")
    return at.astimezone(dt.UTC).replace(tzinfo=None)


def parse_track_event(event: object, source: str, now: dt.datetime) -> tuple:
    """One queue row (QUEUE_COLUMNS) for an event; raises :class:`TrackRejected` naming why."""
    if not isinstance(event, Mapping):
        raise TrackRejected(f"an event must be a JSON object, got {type(event).__name__}")
    kind = event.get("type", event.get("event_type"))
    if kind not in EVENT_TYPES:
        raise TrackRejected(f"type must be one of {', '.join(EVENT_TYPES)}, got {kind!r}")
    received = now.astimezone(dt.UTC).replace(tzinfo=None)
    properties = event.get("properties")
    if properties is not None and not isinstance(properties, Mapping):
        raise TrackRejected("properties must be a JSON object")
    props = json.dumps(properties or {}, sort_keys=True, default=str)
    if len(props) > 10_000:
        raise TrackRejected("properties exceed 10,000 characters")
    if kind == "inventory":
        product = _text(event, "product_id", required=True)
        in_stock = event.get("in_stock")
        if not isinstance(in_stock, bool):
            raise TrackRejected(f"in_stock must be true or false, got {in_stock!r}")
        quantity = event.get("quantity")
        if quantity is not None and (
            isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0
        ):
            raise TrackRejected(f"quantity must be a whole number >= 0, got {quantity!r}")
        at = _time(event.get("at", event.get("timestamp")), "at", now)
        return (track_event_id(event), source, kind, None, product, None, at, received,
                in_stock, quantity, props)  # fmt: skip
    customer = _text(event, "customer_id", required=True)
    product = _text(event, "product_id", required=kind in ("product_view", "add_to_cart"))
    category = _text(event, "category", required=False)
    at = _time(event.get("timestamp"), "timestamp", now)
    return (track_event_id(event), source, kind, customer, product, category, at, received,
            None, None, props)  # fmt: skip


@dataclass
class TrackReceiver:
    """Authentication, validation and landing of ``/v1/track`` posts, without the HTTP server.

    ``keys`` maps a source name to its API key. ``data_dir`` is the data folder: events land
    in ``landing/events`` and ``journeys/queue`` (see :class:`JourneyPaths`).
    """

    data_dir: Path
    keys: Mapping[str, str]
    max_body_bytes: int = MAX_TRACK_BODY_BYTES
    clock: Callable[[], float] = time.time
    _seen: set[str] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self.paths = JourneyPaths.of(self.data_dir)
        self._lock = threading.Lock()
        if self.paths.seen_path.exists():
            with open(self.paths.seen_path, encoding="utf-8") as fh:
                self._seen = {line.strip() for line in fh if line.strip()}

    @property
    def landing_folder(self) -> Path:
        return Path(self.data_dir) / "landing" / "events"

    def source_of(self, headers: Mapping[str, str]) -> str | None:
        """The source whose key the request carries, None when it carries no valid key."""
        auth = headers.get("Authorization") or ""
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        given = given or (headers.get("X-Tessera-Key") or "").strip()
        if not given:
            return None
        found = None
        for source, key in self.keys.items():
            # every key compared, in constant time: the answer's timing tells nothing
            if hmac.compare_digest(given.encode(), key.encode()):
                found = source
        return found

    def precheck(self, headers: Mapping[str, str], length: int) -> tuple[int, dict] | None:
        """What is refused before the body is read: a missing or wrong key, the size."""
        if not self.keys:
            return 401, {"error": f"no API keys are configured ({TRACK_KEYS_VAR})"}
        if self.source_of(headers) is None:
            return 401, {"error": "missing or unknown API key (Authorization: Bearer <key>)"}
        if length > self.max_body_bytes:
            return 413, {"error": f"body of {length} bytes exceeds {self.max_body_bytes} bytes"}
        return None

    def handle(self, raw: bytes, headers: Mapping[str, str]) -> tuple[int, dict]:
        refused = self.precheck(headers, len(raw))
        if refused:
            return refused
        source = self.source_of(headers) or ""
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {"error": 'body must be JSON: {"events": [...]} or an array'}
        events = body.get("events") if isinstance(body, dict) else body
        if not isinstance(events, list):
            return 400, {"error": 'body must be JSON: {"events": [...]} or an array'}
        if len(events) > MAX_EVENTS_PER_POST:
            return 413, {"error": f"{len(events)} events exceed {MAX_EVENTS_PER_POST} per post"}
        with self._lock:
            return 200, self._accept(events, source)

    def _accept(self, events: list, source: str) -> dict:
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        rows, rejected = [], []
        duplicates = 0
        in_post: set[str] = set()
        for i, event in enumerate(events):
            try:
                row = parse_track_event(event, source, now)
            except TrackRejected as exc:
                rejected.append({"index": i, "reason": str(exc)})
                continue
            if row[0] in self._seen or row[0] in in_post:
                duplicates += 1
                continue
            in_post.add(row[0])
            rows.append(row)
        if rejected:
            _append_lines(
                self.paths.rejects_path,
                [
                    json.dumps(
                        {
                            "received_at": now.isoformat(),
                            "source": source,
                            **r,
                            "event": json.dumps(events[r["index"]], default=str)[
                                :_MAX_REJECT_CHARS
                            ],
                        }
                    )
                    for r in rejected
                ],
            )
            log.warning(
                "track: rejected %d of %d events from %s", len(rejected), len(events), source
            )
        reply: dict = {"accepted": len(rows), "duplicates": duplicates}
        if rejected:
            reply["rejected"] = rejected
        if rows:
            frame = pd.DataFrame(rows, columns=QUEUE_COLUMNS)
            frame["in_stock"] = frame["in_stock"].astype("boolean")
            frame["quantity"] = frame["quantity"].astype("Int64")
            ids = frame["event_id"].tolist()
            digest = hashlib.sha256("|".join(ids).encode()).hexdigest()[:16]
            name = f"{FILE_PREFIX}{now.strftime('%Y%m%dT%H%M%S%f')}-{digest}.parquet"
            landing = frame[frame["event_type"].isin(LANDING_EVENT_TYPES)]
            if not landing.empty:
                out = landing[LANDING_COLUMNS].copy()
                out["occurred_at"] = out["occurred_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
                write_atomic_parquet(out.reset_index(drop=True), self.landing_folder, name)
            # The queue file last: a trigger run never sees an event the warehouse will not.
            # A crash before the ids are recorded re-accepts them on the sender's retry; the
            # queue's ingest de-duplicates by event id again.
            write_atomic_parquet(frame, self.paths.queue_dir, name)
            _append_lines(self.paths.seen_path, ids)
            self._seen.update(ids)
            reply["file"] = name
        return reply


def queue_files(data_dir: Path) -> list[Path]:
    """Files of the trigger queue, oldest first (names sort by arrival)."""
    return sorted(JourneyPaths.of(data_dir).queue_dir.glob("*.parquet"))
