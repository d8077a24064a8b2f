"""Event emission: posts the simulated events, signed, to Tessera's event endpoint."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import requests

from tessera.activations.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_payload
from tessera.activations.sink.responses import simulate_events

log = logging.getLogger(__name__)


class EventEmitter:
    """Background thread: turns received messages into signed event-webhook posts."""

    def __init__(
        self,
        events_url: str | None,
        private_key,
        seed: int,
        batch: int = 5000,
        pending_path: Path | None = None,
        clock=time.time,
    ) -> None:
        self.events_url = events_url
        self.key = private_key
        self.seed = seed
        self.batch = batch
        self.clock = clock
        # Events the simulation dates after "now" (an open tomorrow of today's send) are held
        # back like a real provider would, kept on disk, and posted once their time has come.
        self.pending_path = pending_path
        self._pending: list[dict] = self._load_pending()
        self.q: queue.Queue[dict | None] = queue.Queue()
        self._scheduled: list[dict] = []
        self._scheduled_lock = threading.Lock()
        #: set by the sink: whether a scheduled batch was cancelled
        self.is_cancelled: Callable[[str | None], bool] = lambda _batch: False
        self.posted_events = 0
        self.failed_posts = 0
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="sink-events", daemon=True)
        self._thread.start()

    def _load_pending(self) -> list[dict]:
        if not self.pending_path or not self.pending_path.exists():
            return []
        lines = self.pending_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def _save_pending(self) -> None:
        if not self.pending_path:
            return
        tmp = self.pending_path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(e) + "\n" for e in self._pending))
        tmp.replace(self.pending_path)

    @property
    def pending_events(self) -> int:
        return len(self._pending)

    def _due(self, events: list[dict]) -> list[dict]:
        """The events that have happened by now; the rest join the pending list."""
        now = self.clock()
        candidates = self._pending + events
        due = [e for e in candidates if e["timestamp"] <= now]
        later = [e for e in candidates if e["timestamp"] > now]
        if len(later) != len(self._pending) or events:
            self._pending = later
            self._save_pending()
        return due

    def submit(self, messages: list[dict]) -> None:
        if not self.events_url:
            return
        now = self.clock()
        for m in messages:
            if (m.get("send_at") or 0) > now:
                # Scheduled: nothing happens before send_at, and nothing if it is cancelled.
                with self._scheduled_lock:
                    self._scheduled.append(m)
            else:
                self.q.put(m)

    def _release_scheduled(self) -> None:
        now = self.clock()
        with self._scheduled_lock:
            due = [m for m in self._scheduled if m["send_at"] <= now]
            self._scheduled = [m for m in self._scheduled if m["send_at"] > now]
        for m in due:
            if not self.is_cancelled(m.get("batch_id")):
                self.q.put(m)

    def _run(self) -> None:
        while True:
            try:
                first = self.q.get(timeout=1.0)
            except queue.Empty:
                if self._scheduled:
                    self._release_scheduled()
                if self._pending and self.events_url:
                    due = self._due([])
                    if due:
                        self._post(due)
                continue
            if first is None:
                self.q.task_done()
                return
            items = [first]
            try:
                while len(items) < self.batch:
                    items.append(self.q.get(timeout=0.2))
                    if items[-1] is None:
                        items.pop()
                        self.q.put(None)
                        self.q.task_done()
                        break
            except queue.Empty:
                pass
            try:
                events = self._due([e for m in items for e in simulate_events(m, self.seed)])
                if events:
                    self._post(events)
            finally:
                for _ in items:
                    self.q.task_done()

    def _post(self, events: list[dict]) -> None:
        raw = orjson.dumps(events)
        for attempt in range(5):
            ts = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign_payload(self.key, ts, raw),
                TIMESTAMP_HEADER: ts,
            }
            try:
                resp = self._session.post(self.events_url, data=raw, headers=headers, timeout=30)
                if resp.status_code < 300:
                    self.posted_events += len(events)
                    return
                log.warning("event endpoint answered %s: %s", resp.status_code, resp.text[:200])
            except requests.RequestException as exc:
                log.warning("event endpoint unreachable (%s), retrying", type(exc).__name__)
            time.sleep(0.2 * 2**attempt)
        self.failed_posts += 1
        log.error("gave up posting %d events to %s", len(events), self.events_url)

    def flush(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.q.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self) -> None:
        self.q.put(None)
        self._thread.join(timeout=5)
