"""Tessera's event endpoint: verifies signed provider events and lands them for the warehouse.

Events arrive in SendGrid's event-webhook format (a JSON array; custom args flattened into each
event). Verified posts become one Parquet file each under
``landing/campaign_responses/events-*.parquet`` in the source contract, written atomically
(temp file + rename), so the next raw load, features and suppressions see them.

Each post is checked before its body is read (signature headers, timestamp window, size) and
each event on its own: a malformed event is rejected with its reason (in the reply and in
``rejects.jsonl``) and the valid ones beside it are landed. Event ids already landed are not
landed again, so a replayed or retried post is harmless.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from tessera.activations.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_payload

log = logging.getLogger(__name__)

EVENTS_PATH = "/events/sendgrid"
LANDING_COLUMNS = [
    "message_id",
    "customer_id",
    "campaign_id",
    "channel",
    "event",
    "occurred_at",
    "revenue",
]
#: SendGrid event names -> the campaign_responses contract; others (processed, deferred) are
#: delivery internals and are not landed.
EVENT_MAP = {
    "delivered": "delivered",
    "open": "open",
    "click": "click",
    "bounce": "bounce",
    "dropped": "bounce",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
    "spamreport": "spam_report",
    "conversion": "conversion",  # Tessera extension: carries `revenue`
}
FILE_PREFIX = "events-"


#: Posts larger than this are refused (413) before their body is read. SendGrid posts batches
#: of events far below it; the sink posts at most 5,000 events (about 2 MB) at a time.
MAX_BODY_BYTES = 32 * 1024 * 1024
#: Events dated before this or more than a day ahead of the receiver's clock are rejected.
EARLIEST_EVENT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC).timestamp()
MAX_FUTURE_S = 86_400.0
CHANNELS = ("email", "sms", "webhook", "direct_mail")
_MAX_REJECT_CHARS = 2_000


class EventRejected(ValueError):
    """One event in a post is malformed; the reason goes into the reply and the rejects file."""


def event_id(event: Mapping) -> str:
    """The provider's ``sg_event_id``, else a hash of the event's content (stable on replay)."""
    given = event.get("sg_event_id")
    if isinstance(given, str) and given.strip():
        return given.strip()
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _revenue(value: object) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise EventRejected(f"revenue must be a number, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        # "12,50" is a decimal comma or a thousands separator: guessing either is wrong.
        if not text or any(c not in "0123456789.-+eE" for c in text):
            raise EventRejected(f"revenue must be a number with a decimal point, got {value!r}")
        value = text
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise EventRejected(f"revenue must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise EventRejected(f"revenue must be a finite amount >= 0, got {value!r}")
    return number


def _timestamp(value: object, now: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise EventRejected(f"timestamp must be Unix seconds, got {value!r}")
    try:
        ts = float(value)
    except ValueError:
        raise EventRejected(f"timestamp must be Unix seconds, got {value!r}") from None
    if not math.isfinite(ts) or ts < EARLIEST_EVENT or ts > now + MAX_FUTURE_S:
        raise EventRejected(
            f"timestamp {value!r} is not a plausible time (before 2000 or more than a day ahead)"
        )
    return ts


def parse_event(event: object, now: float) -> tuple | None:
    """One landing row for a provider event, None for event types Tessera does not land.

    Raises :class:`EventRejected` naming what is wrong, so one bad event never costs the
    others in its post.
    """
    if not isinstance(event, Mapping):
        raise EventRejected(f"an event must be a JSON object, got {type(event).__name__}")
    name = EVENT_MAP.get(str(event.get("event")))
    if name is None:
        if not isinstance(event.get("event"), str) or not event.get("event"):
            raise EventRejected("missing the event name ('event')")
        return None  # processed, deferred, ...: delivery internals
    key = event.get("message_key")
    if not isinstance(key, str) or not key.strip():
        raise EventRejected("missing message_key (the custom arg Tessera sends with each message)")
    channel = event.get("channel") or "email"
    if channel not in CHANNELS:
        raise EventRejected(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    occurred = dt.datetime.fromtimestamp(int(_timestamp(event.get("timestamp"), now)), dt.UTC)
    return (
        key,
        str(event.get("customer_id") or ""),
        str(event.get("campaign_id") or ""),
        str(channel),
        name,
        occurred.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S"),
        _revenue(event.get("revenue")),
    )


def events_to_frame(events: list[Mapping], now: float | None = None) -> pd.DataFrame:
    """Map SendGrid-format events to campaign_responses rows (unknown event types dropped).

    Raises :class:`EventRejected` on the first malformed event; the endpoint uses
    :func:`parse_event` per event instead.
    """
    now = time.time() if now is None else now
    rows = [row for e in events if (row := parse_event(e, now)) is not None]
    return pd.DataFrame(rows, columns=LANDING_COLUMNS)


def write_atomic_parquet(frame: pd.DataFrame, folder: Path, name: str) -> Path:
    """Write ``folder/name`` so that readers never see a partial file."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    tmp = folder / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
    frame.to_parquet(tmp, index=False)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    return target


def _append_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in lines))
        fh.flush()
        os.fsync(fh.fileno())


@dataclass
class EventReceiver:
    """Verification and landing, independent of the HTTP server (so it is testable alone).

    Besides the landing files it keeps, in ``state_dir`` (default ``<landing>/../events``):
    ``seen_event_ids.txt`` (every landed event id, so a replayed or retried post lands nothing
    twice) and ``rejects.jsonl`` (each rejected event with the reason).
    """

    landing_dir: Path
    public_key: str
    tolerance_s: float = 600.0
    max_body_bytes: int = MAX_BODY_BYTES
    state_dir: Path | None = None
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir or Path(self.landing_dir).parent / "events")
        self._lock = threading.Lock()
        self._seen_ids: set[str] = set()
        if self.seen_path.exists():
            with open(self.seen_path, encoding="utf-8") as fh:
                self._seen_ids = {line.strip() for line in fh if line.strip()}
        #: (timestamp, signature) of verified posts -> when they expire from the window.
        self._seen_posts: dict[str, float] = {}

    @property
    def folder(self) -> Path:
        return Path(self.landing_dir) / "campaign_responses"

    @property
    def seen_path(self) -> Path:
        return Path(self.state_dir) / "seen_event_ids.txt"  # type: ignore[arg-type]

    @property
    def rejects_path(self) -> Path:
        return Path(self.state_dir) / "rejects.jsonl"  # type: ignore[arg-type]

    def precheck(self, headers: Mapping[str, str], length: int) -> tuple[int, dict] | None:
        """What can be refused before the body is read: auth headers, staleness, size."""
        signature = headers.get(SIGNATURE_HEADER)
        timestamp = headers.get(TIMESTAMP_HEADER)
        if not signature or not timestamp:
            return 401, {"error": "missing event webhook signature headers"}
        try:
            fresh = abs(self.clock() - float(timestamp)) <= self.tolerance_s
        except ValueError:
            fresh = False
        if not fresh:
            return 403, {"error": "stale or malformed signature timestamp"}
        if length > self.max_body_bytes:
            return 413, {"error": f"body of {length} bytes exceeds {self.max_body_bytes} bytes"}
        return None

    def handle(self, raw: bytes, headers: Mapping[str, str]) -> tuple[int, dict]:
        refused = self.precheck(headers, len(raw))
        if refused:
            return refused
        signature, timestamp = headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER]
        if not verify_payload(self.public_key, timestamp, raw, signature):
            return 403, {"error": "bad signature"}
        now = self.clock()
        post_key = hashlib.sha256(f"{timestamp}|{signature}".encode()).hexdigest()
        with self._lock:
            self._seen_posts = {k: t for k, t in self._seen_posts.items() if t > now}
            if post_key in self._seen_posts:
                return 200, {"landed": 0, "replayed": True}
        try:
            events = orjson.loads(raw)
        except ValueError:
            return 400, {"error": "body must be a JSON array of events"}
        if not isinstance(events, list):
            return 400, {"error": "body must be a JSON array of events"}
        with self._lock:
            reply = self._land(events, now)
            self._seen_posts[post_key] = now + 2 * self.tolerance_s
        return 200, reply

    def _land(self, events: list, now: float) -> dict:
        rows, ids, rejected = [], [], []
        duplicates = ignored = 0
        in_post: set[str] = set()
        for i, event in enumerate(events):
            try:
                row = parse_event(event, now)
            except EventRejected as exc:
                rejected.append({"index": i, "reason": str(exc)})
                continue
            if row is None:
                ignored += 1
                continue
            eid = event_id(event)  # type: ignore[arg-type]
            if eid in self._seen_ids or eid in in_post:
                duplicates += 1
                continue
            in_post.add(eid)
            rows.append(row)
            ids.append(eid)
        if rejected:
            at = dt.datetime.fromtimestamp(now, dt.UTC).isoformat()
            _append_lines(
                self.rejects_path,
                [
                    json.dumps(
                        {
                            "received_at": at,
                            **r,
                            "event": json.dumps(events[r["index"]], default=str)[
                                :_MAX_REJECT_CHARS
                            ],
                        }
                    )
                    for r in rejected
                ],
            )
            log.warning("event endpoint rejected %d of %d events", len(rejected), len(events))
        reply: dict = {"landed": len(rows), "duplicates": duplicates, "ignored": ignored}
        if rejected:
            reply["rejected"] = rejected
        if rows:
            digest = hashlib.sha256("|".join(ids).encode()).hexdigest()[:16]
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
            name = f"{FILE_PREFIX}{stamp}-{digest}.parquet"
            # Landed first, ids recorded second: a crash in between re-lands on the provider's
            # retry (at least once) rather than losing the events.
            write_atomic_parquet(pd.DataFrame(rows, columns=LANDING_COLUMNS), self.folder, name)
            _append_lines(self.seen_path, ids)
            self._seen_ids.update(ids)
            reply["file"] = name
        return reply


class _Handler(BaseHTTPRequestHandler):
    receiver: EventReceiver
    protocol_version = "HTTP/1.1"
    #: As the sink's: an answer's body must not wait for the client's delayed ACK.
    disable_nagle_algorithm = True
    #: Seconds a client may take to send its request (a stalled body does not hold a thread).
    timeout = 60

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("events: " + format, *args)

    def do_POST(self) -> None:  # noqa: N802
        try:
            status, body, read = self._respond()
        except Exception:  # an answer for the provider, the traceback for the log
            log.exception("event endpoint failed on a post")
            status, body, read = 500, {"error": "internal error; retry later"}, False
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if not read:
            # The body was not read: the connection cannot carry another request.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)

    def _respond(self) -> tuple[int, dict, bool]:
        """(status, reply, whether the body was read)."""
        path = self.path.split("?")[0]
        track = getattr(self.server, "track", None)
        if track is not None and path == track.path:
            return self._respond_with(track.receiver)
        if path != EVENTS_PATH:
            return 404, {"error": "not found"}, False
        receiver: EventReceiver = self.server.receiver  # type: ignore[attr-defined]
        return self._respond_with(receiver)

    def _respond_with(self, receiver: Any) -> tuple[int, dict, bool]:
        """Read the body after ``receiver.precheck`` and hand it to ``receiver.handle``."""
        if self.headers.get("Transfer-Encoding"):
            return 411, {"error": "send the body with a Content-Length"}, False
        text = self.headers.get("Content-Length")
        if text is None:
            return 411, {"error": "Content-Length is required"}, False
        if not text.strip().isdigit():
            return 400, {"error": f"Content-Length must be a whole number, got {text!r}"}, False
        length = int(text)
        refused = receiver.precheck(self.headers, length)
        if refused:
            return (*refused, False)
        raw = self.rfile.read(length)
        if len(raw) < length:
            return 400, {"error": "body shorter than its Content-Length"}, False
        status, body = receiver.handle(raw, self.headers)
        return status, body, True


@dataclass(frozen=True)
class ExtraRoute:
    """Another POST route on the same server (the journeys' ``/v1/track`` collector): a
    receiver with ``precheck(headers, length)`` and ``handle(raw, headers)`` like ours."""

    path: str
    receiver: Any


def make_server(
    receiver: EventReceiver,
    host: str = "127.0.0.1",
    port: int = 0,
    track: ExtraRoute | None = None,
) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), _Handler)
    server.daemon_threads = True
    server.receiver = receiver  # type: ignore[attr-defined]
    server.track = track  # type: ignore[attr-defined]
    return server


@contextmanager
def running_events(
    receiver: EventReceiver,
    port: int = 0,
    track: ExtraRoute | None = None,
    host: str = "127.0.0.1",
) -> Iterator[str]:
    """Serve the endpoint in a thread (on 127.0.0.1 unless ``host`` says otherwise, as inside a
    container); yields its URL."""
    server = make_server(receiver, host=host, port=port, track=track)
    thread = threading.Thread(target=server.serve_forever, name="tessera-events", daemon=True)
    thread.start()
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    try:
        yield f"http://{shown}:{server.server_address[1]}{EVENTS_PATH}"
    finally:
        server.shutdown()
        server.server_close()


def landed_event_files(landing_dir: Path) -> list[Path]:
    """Event files the endpoint has landed, oldest first."""
    return sorted((Path(landing_dir) / "campaign_responses").glob(f"{FILE_PREFIX}*.parquet"))
