"""What the sink received: JSONL on disk, counts in memory, SendGrid scheduled batches."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections import Counter
from pathlib import Path

import orjson

from tessera.activations.providers.sendgrid_rules import CANCEL_BEFORE_S, MAX_HELD_BATCHES


class SinkState:
    """What the sink received, on disk (JSONL) and indexed in memory."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.received_path = folder / "received.jsonl"
        self.requests_path = folder / "requests.jsonl"
        self.batches_path = folder / "batches.json"
        self.key_counts: Counter[str] = Counter()
        self.by_channel: Counter[str] = Counter()
        self.status_counts: Counter[str] = Counter()
        #: SendGrid batch ids (POST /v3/mail/batch) -> status (None, "pause", "cancel") and the
        #: latest send_at of their messages; a cancelled batch's messages are discarded.
        self.batches: dict[str, dict] = (
            json.loads(self.batches_path.read_text()) if self.batches_path.exists() else {}
        )
        if self.received_path.exists():
            with open(self.received_path, encoding="utf-8") as fh:
                for line in fh:
                    rec = json.loads(line)
                    if not self._discarded(rec):
                        self.key_counts[rec["message_key"]] += 1
                        self.by_channel[rec["channel"]] += 1
        # Kept open for the sink's lifetime (closed in close()): one append per request.
        self._received = open(self.received_path, "a", encoding="utf-8")  # noqa: SIM115
        self._requests = open(self.requests_path, "a", encoding="utf-8")  # noqa: SIM115

    def _discarded(self, rec: dict) -> bool:
        batch = self.batches.get(rec.get("batch_id") or "")
        return bool(batch and batch.get("status") == "cancel")

    def _save_batches(self) -> None:
        tmp = self.batches_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.batches))
        tmp.replace(self.batches_path)

    def store(self, records: list[dict]) -> None:
        lines = "".join([orjson.dumps(r).decode() + "\n" for r in records])
        with self.lock:
            self._received.write(lines)
            self._received.flush()
            changed = False
            for r in records:
                batch = self.batches.get(r.get("batch_id") or "")
                if batch is not None:
                    batch["keys"].append(r["message_key"])
                    batch["send_at"] = max(batch.get("send_at") or 0, r.get("send_at") or 0)
                    changed = True
                if not self._discarded(r):
                    self.key_counts[r["message_key"]] += 1
                    self.by_channel[r["channel"]] += 1
            if changed:
                self._save_batches()

    def batch_ids(self) -> set[str]:
        with self.lock:
            return set(self.batches)

    def create_batch(self) -> str:
        batch_id = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")
        with self.lock:
            self.batches[batch_id] = {"status": None, "send_at": None, "keys": []}
            self._save_batches()
        return batch_id

    def is_cancelled(self, batch_id: str | None) -> bool:
        with self.lock:
            batch = self.batches.get(batch_id or "")
            return bool(batch and batch.get("status") == "cancel")

    def set_batch_status(self, batch_id: str, status: str, now: float) -> str | None:
        """Pause or cancel a batch under SendGrid's rules; the reason it is refused, or None."""
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return f"batch_id {batch_id} is not a valid batch id"
            if batch.get("status"):
                return f"batch {batch_id} is already {batch['status']}ed"
            send_at = batch.get("send_at")
            if send_at is not None and now > send_at - CANCEL_BEFORE_S:
                return (
                    "You can't pause or cancel a batch later than 10 minutes before the "
                    "scheduled send_at time."
                )
            held = [
                b
                for b in self.batches.values()
                if b.get("status") and (b.get("send_at") is None or b["send_at"] > now)
            ]
            if len(held) >= MAX_HELD_BATCHES:
                return (
                    f"You can't pause or cancel more than {MAX_HELD_BATCHES} different batches "
                    "at one time."
                )
            batch["status"] = status
            if status == "cancel":
                for key in batch["keys"]:
                    self.key_counts[key] -= 1
                    if self.key_counts[key] <= 0:
                        del self.key_counts[key]
                    self.by_channel["email"] -= 1
            self._save_batches()
        return None

    def log_request(self, path: str, status: int, count: int, fault: str | None) -> None:
        rec = {"at": time.time(), "path": path, "status": status, "messages": count, "fault": fault}
        with self.lock:
            self._requests.write(json.dumps(rec) + "\n")
            self._requests.flush()
            self.status_counts[str(status)] += 1

    def stats(self) -> dict:
        with self.lock:
            return {
                "messages": sum(self.key_counts.values()),
                "unique_keys": len(self.key_counts),
                "duplicates": sum(c - 1 for c in self.key_counts.values() if c > 1),
                "by_channel": dict(self.by_channel),
                "responses": dict(self.status_counts),
            }

    def close(self) -> None:
        self._received.close()
        self._requests.close()
