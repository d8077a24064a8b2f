"""Tessera's event endpoint: verifies signed provider events and lands them for the warehouse.

Events arrive in SendGrid's event-webhook format (a JSON array; custom args flattened into each
event). Verified posts become one Parquet file each under
``landing/campaign_responses/events-*.parquet`` in the source contract, written atomically
(temp file + rename), so the next raw load, features and suppressions see them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd

from activations.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_payload

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


def events_to_frame(events: list[Mapping]) -> pd.DataFrame:
    """Map SendGrid-format events to campaign_responses rows (unknown event types dropped)."""
    rows = []
    for e in events:
        name = EVENT_MAP.get(str(e.get("event")))
        if name is None or not e.get("message_key"):
            continue
        occurred = dt.datetime.fromtimestamp(int(e["timestamp"]), dt.UTC).replace(tzinfo=None)
        revenue = e.get("revenue")
        rows.append(
            (
                str(e["message_key"]),
                str(e.get("customer_id") or ""),
                str(e.get("campaign_id") or ""),
                str(e.get("channel") or "email"),
                name,
                occurred.strftime("%Y-%m-%d %H:%M:%S"),
                float(revenue) if revenue not in (None, "") else None,
            )
        )
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


@dataclass
class EventReceiver:
    """Verification and landing, independent of the HTTP server (so it is testable alone)."""

    landing_dir: Path
    public_key: str
    tolerance_s: float = 600.0

    @property
    def folder(self) -> Path:
        return Path(self.landing_dir) / "campaign_responses"

    def handle(self, raw: bytes, headers: Mapping[str, str]) -> tuple[int, dict]:
        signature = headers.get(SIGNATURE_HEADER)
        timestamp = headers.get(TIMESTAMP_HEADER)
        if not signature or not timestamp:
            return 401, {"error": "missing event webhook signature headers"}
        try:
            fresh = abs(time.time() - float(timestamp)) <= self.tolerance_s
        except ValueError:
            fresh = False
        if not fresh:
            return 403, {"error": "stale or malformed signature timestamp"}
        if not verify_payload(self.public_key, timestamp, raw, signature):
            return 403, {"error": "bad signature"}
        try:
            events = json.loads(raw)
            assert isinstance(events, list)
        except (ValueError, AssertionError):
            return 400, {"error": "body must be a JSON array of events"}
        frame = events_to_frame(events)
        if frame.empty:
            return 200, {"landed": 0}
        # Named by the body's hash: a provider retrying the same post rewrites the same file.
        digest = hashlib.sha256(raw).hexdigest()[:16]
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        existing = list(self.folder.glob(f"{FILE_PREFIX}*-{digest}.parquet"))
        name = existing[0].name if existing else f"{FILE_PREFIX}{stamp}-{digest}.parquet"
        write_atomic_parquet(frame, self.folder, name)
        return 200, {"landed": len(frame), "file": name}


class _Handler(BaseHTTPRequestHandler):
    receiver: EventReceiver

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("events: " + format, *args)

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.split("?")[0] != EVENTS_PATH:
            status, body = 404, {"error": "not found"}
        else:
            status, body = self.server.receiver.handle(raw, self.headers)  # type: ignore[attr-defined]
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def make_server(
    receiver: EventReceiver, host: str = "127.0.0.1", port: int = 0
) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), _Handler)
    server.daemon_threads = True
    server.receiver = receiver  # type: ignore[attr-defined]
    return server


@contextmanager
def running_events(receiver: EventReceiver, port: int = 0) -> Iterator[str]:
    """Serve the endpoint on 127.0.0.1 in a thread; yields its URL."""
    server = make_server(receiver, port=port)
    thread = threading.Thread(target=server.serve_forever, name="tessera-events", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{EVENTS_PATH}"
    finally:
        server.shutdown()
        server.server_close()


def landed_event_files(landing_dir: Path) -> list[Path]:
    """Event files the endpoint has landed, oldest first."""
    return sorted((Path(landing_dir) / "campaign_responses").glob(f"{FILE_PREFIX}*.parquet"))
