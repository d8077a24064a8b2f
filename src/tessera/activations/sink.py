"""A local stand-in for SendGrid and Twilio: validates, records, injects faults, emits events.

Listens on 127.0.0.1 only. Endpoints:
- ``POST /v3/mail/send`` (Bearer auth; SendGrid's documented rules and error shape, see
  :func:`sendgrid_errors`; 202 on success; ``send_at`` + ``batch_id`` schedule a send)
- ``POST /v3/mail/batch`` (a batch id) and ``POST /v3/user/scheduled_sends`` (pause or
  cancel a batch, with SendGrid's limits: not later than 10 minutes before ``send_at``, at
  most 10 batches paused or cancelled at once; a cancelled batch's messages are discarded)
- ``POST /2010-04-01/Accounts/{sid}/Messages.json`` (basic auth; 201 with a message sid)
- ``POST /webhook/push`` (HMAC-signed generic webhook)
- ``POST /_sink/received`` {"keys": [...]} -> keys recorded (reconciliation),
  ``POST /_sink/faults`` (fault plan), ``POST /_sink/flush`` (deliver queued events),
  ``GET /_sink/stats``.
Every received message is appended to ``received.jsonl``; events about it go, signed like
SendGrid's event webhook, to Tessera's event endpoint with timestamps relative to the
message's campaign date (from its custom args), not the wall clock.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import queue
import random
import re
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

from tessera.activations.providers import webhook as webhook_signing
from tessera.activations.providers.sendgrid_rules import (  # noqa: F401 - part of the sink's API
    DYNAMIC_TEMPLATE_RE,
    LEGACY_TEMPLATE_RE,
    address_problem,
)
from tessera.activations.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    load_or_create_private_key,
    public_key_b64,
    sign_payload,
)

log = logging.getLogger(__name__)

DEFAULT_PORT = 8725
MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
_E164_RE = re.compile(r"^\+?[0-9]{7,15}$")
_TWILIO_PATH = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")
FAULT_KINDS = ("429", "500", "503", "slow", "drop")


@dataclass
class FaultPlan:
    """Which provider requests fail and how; decisions come from a seeded generator."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ("429",)
    seed: int = 0
    first_n: int = 0  # additionally fault exactly the first n requests
    slow_s: float = 2.0
    retry_after_s: float = 0.2
    #: Every provider request takes this long between reading its body and storing it (a
    #: provider under load), independent of ``rate``: a client timeout below it is ambiguous.
    processing_s: float = 0.0

    @classmethod
    def from_dict(cls, d: dict) -> FaultPlan:
        plan = cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
        plan.kinds = tuple(plan.kinds)
        bad = [k for k in plan.kinds if k not in FAULT_KINDS]
        if bad:
            raise ValueError(f"unknown fault kind(s) {bad}; choose from {FAULT_KINDS}")
        return plan


def _unit(*parts: object) -> float:
    """A deterministic uniform number in [0, 1) from the parts."""
    return _unit_cached("|".join(map(str, parts)))


@dataclass(frozen=True)
class EventRates:
    """Response model: base rates scaled by customer and campaign factors (both in [0, 1))."""

    bounce: float = 0.015
    open_base: float = 0.20
    open_customer: float = 0.35
    click_base: float = 0.15
    click_campaign: float = 0.25
    unsubscribe: float = 0.004
    spam_report: float = 0.0005
    conversion_base: float = 0.01
    conversion_customer: float = 0.05
    conversion_campaign: float = 1.5
    click_conversion_boost: float = 3.0


@functools.lru_cache(maxsize=4096)
def _day_start(text: str) -> float | None:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return None


@functools.lru_cache(maxsize=200_000)
def _unit_cached(text: str) -> float:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def simulate_events(msg: dict, seed: int, rates: EventRates = EventRates()) -> list[dict]:
    """SendGrid-format events for one received message, deterministic in (seed, key)."""
    key, cust, camp, channel = (
        msg["message_key"],
        msg["customer_id"],
        msg["campaign_id"],
        msg["channel"],
    )
    day = _day_start(str(msg.get("as_of_date") or "")[:10])
    if day is None:
        return []
    duration = max(1, int(msg.get("duration_days") or 7))
    u_c, u_k = _unit(seed, "customer", cust), _unit(seed, "campaign", camp)
    digest = hashlib.sha256(f"{seed}|{key}".encode()).digest()
    # Ten independent uniforms from one hash (the sink must keep up with 20k messages/s).
    r = [int.from_bytes(digest[3 * i : 3 * i + 3], "big") / 2**24 for i in range(10)]
    base = day + 9 * 3600 + r[0] * 3 * 3600
    common = {
        "email": msg.get("address", ""),
        "message_key": key,
        "campaign_id": camp,
        "customer_id": cust,
        "as_of_date": msg["as_of_date"][:10],
        "channel": channel,
        "sg_message_id": f"{msg.get('provider_message_id', key)}.tessera-sink",
        "category": ["tessera", camp],
    }

    def event(name: str, at: float, **extra: object) -> dict:
        eid = base64.urlsafe_b64encode(
            hashlib.sha256(f"{key}|{name}".encode()).digest()[:15]
        ).decode()
        return {**common, "event": name, "timestamp": int(at), "sg_event_id": eid, **extra}

    if _unit(seed, "bounce", cust, channel) < rates.bounce:
        return [event("bounce", base + 30, reason="550 5.1.1 mailbox unavailable", type="bounce")]
    out = [event("delivered", base + 5 + r[1] * 120)]
    opened = channel in ("email", "webhook") and r[2] < rates.open_base + rates.open_customer * u_c
    t_open = base + 600 + r[3] * 36 * 3600
    if opened:
        out.append(event("open", t_open))
    click_p = rates.click_base + rates.click_campaign * u_k
    clicked = (opened or channel == "sms") and r[4] < click_p * (1.0 if opened else 0.4)
    t_click = t_open + 60 + r[5] * 1800
    if clicked:
        out.append(event("click", t_click, url="https://shop.example/offer"))
    if r[6] < rates.unsubscribe * (3 if channel == "sms" else 1):
        out.append(event("unsubscribe", t_open + 120))
    elif channel == "email" and r[7] < rates.spam_report:
        out.append(event("spamreport", t_open + 180))
    p_conv = (rates.conversion_base + rates.conversion_customer * u_c) * (
        0.5 + rates.conversion_campaign * u_k
    )
    if clicked:
        p_conv *= rates.click_conversion_boost
    if r[8] < min(p_conv, 0.9):
        at = base + 3600 + r[9] * (duration * 86400 - 12 * 3600)
        revenue = round(15 + 185 * _unit(seed, "revenue", key), 2)
        out.append(event("conversion", at, revenue=revenue))
    return out


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
        raw = json.dumps(events, separators=(",", ":")).encode()
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
        lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
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


_HELP = "https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors"
#: SendGrid's documented limits of v3 mail/send (docs: "Mail Send" reference, "Limitations",
#: "Errors"; Cancel Scheduled Sends for batches).
MAX_CATEGORIES = 10
MAX_CATEGORY_CHARS = 255
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_BODY_BYTES = 30 * 1024 * 1024
MAX_SEND_AHEAD_S = 72 * 3600
#: Cancel Scheduled Sends: no pause or cancel later than 10 minutes before send_at, and at
#: most 10 batches paused or cancelled at one time.
CANCEL_BEFORE_S = 600
MAX_HELD_BATCHES = 10
#: Headers SendGrid sets itself and refuses in ``headers`` (case-insensitive).
RESERVED_HEADERS = frozenset(
    {
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
    }
)


def _template_errors(body: dict, err) -> None:  # type: ignore[no-untyped-def]
    template_id = body.get("template_id")
    pers = body.get("personalizations") if isinstance(body.get("personalizations"), list) else []
    has_dynamic_data = any(isinstance(p, dict) and "dynamic_template_data" in p for p in pers)
    if template_id is None:
        if has_dynamic_data:
            err("Cannot use dynamic template data without a template ID.", "template_id")
        return
    if not isinstance(template_id, str) or not (
        DYNAMIC_TEMPLATE_RE.match(template_id) or LEGACY_TEMPLATE_RE.match(template_id)
    ):
        err(
            "The Template ID must be a valid template id for your account. "
            "Dynamic template ids are d- followed by 32 hexadecimal digits.",
            "template_id",
            f"{_HELP}#template_id",
        )
    if has_dynamic_data and not (
        isinstance(template_id, str) and DYNAMIC_TEMPLATE_RE.match(template_id)
    ):
        # Named on the template, not on a personalization: the whole request is wrong.
        err(
            "Cannot use dynamic template data with a legacy template ID",
            "template_id",
            f"{_HELP}#personalizations.dynamic_template_data",
        )


def _custom_args_bytes(*parts: object) -> int:
    merged: dict = {}
    for part in parts:
        if isinstance(part, dict):
            merged.update(part)
    return len(json.dumps(merged, separators=(",", ":"), ensure_ascii=False).encode())


def sendgrid_errors(
    body: object,
    known_batches: set[str] | None = None,
    now: float | None = None,
    raw_size: int = 0,
) -> list[dict]:
    """Validate a v3 mail/send body by SendGrid's documented rules (errors as SendGrid's).

    Covers what a Tessera request can get wrong: sender and recipient address syntax and
    length, template id format and dynamic data, unique categories (at most 10 of at most 255
    characters), custom_args under 10,000 bytes per message, at most 1,000 personalizations and
    1,000 recipients, one address once per request, reserved headers, ``send_at`` at most 72
    hours ahead and ``batch_id`` from ``POST /v3/mail/batch``.
    """
    errs: list[dict] = []
    now = time.time() if now is None else now

    def err(message: str, field_: str | None, help_: str | None = None) -> None:
        errs.append({"message": message, "field": field_, "help": help_})

    if not isinstance(body, dict):
        err("Bad Request", None)
        return errs
    if raw_size > MAX_BODY_BYTES:
        err("The total size of your email must be less than 30MB.", None, f"{_HELP}#message")
    sender = body.get("from")
    if not isinstance(sender, dict) or address_problem(sender.get("email")):
        err(
            "The from email does not contain a valid address.",
            "from.email",
            f"{_HELP}#message.from",
        )
    elif not str(sender.get("email", "")).isascii():
        err("Unicode encoding is not supported for the from field.", "from.email")
    template_id = body.get("template_id")
    if not template_id and not body.get("content"):
        err(
            "Unless a valid template_id is provided, the content parameter is required. There "
            "must be at least one defined content block.",
            "content",
        )
    if not template_id and not body.get("subject"):
        err(
            "The subject is required. You can get around this requirement if you use a template "
            "with a subject defined.",
            "subject",
        )
    _template_errors(body, err)
    categories = body.get("categories")
    if categories is not None:
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            err("The categories parameter must be an array of strings.", "categories")
        else:
            if len(categories) > MAX_CATEGORIES:
                err(
                    f"You may not have more than {MAX_CATEGORIES} categories per request.",
                    "categories",
                )
            if len({c.lower() for c in categories}) != len(categories):
                err("The categories parameter must contain unique values.", "categories")
            for i, c in enumerate(categories):
                if not c or len(c) > MAX_CATEGORY_CHARS:
                    err(
                        f"A category cannot be empty or exceed {MAX_CATEGORY_CHARS} characters.",
                        f"categories.{i}",
                    )
    headers = body.get("headers")
    if headers is not None:
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            err("Invalid type. The headers must be an object of string values.", "headers")
        else:
            for name in headers:
                if str(name).strip().lower() in RESERVED_HEADERS:
                    err(
                        f"The header {name} is reserved and cannot be set in the headers "
                        "parameter.",
                        f"headers.{name}",
                        f"{_HELP}#message.headers",
                    )
    send_at = body.get("send_at")
    if send_at is not None:
        if not isinstance(send_at, int) or isinstance(send_at, bool):
            err("send_at must be a UNIX timestamp (whole seconds).", "send_at")
        elif send_at > now + MAX_SEND_AHEAD_S:
            err("You cannot schedule a send more than 72 hours in advance.", "send_at")
    batch_id = body.get("batch_id")
    if batch_id is not None and (known_batches is None or batch_id not in known_batches):
        err("The batch ID is not valid. Create one with POST /v3/mail/batch.", "batch_id")
    pers = body.get("personalizations")
    if not isinstance(pers, list) or not pers:
        err(
            "The personalizations field is required and must have at least one personalization.",
            "personalizations",
        )
        return errs
    if len(pers) > MAX_PERSONALIZATIONS:
        err(
            f"The personalization block is limited to {MAX_PERSONALIZATIONS} personalizations "
            f"per API request. You have provided {len(pers)} personalizations. Please consider "
            "splitting this into multiple requests and resending your request.",
            "personalizations",
        )
        return errs
    seen: dict[str, str] = {}
    recipients = 0
    for i, p in enumerate(pers):
        if not isinstance(p, dict) or not p.get("to"):
            err(
                "The to array is required for all personalization objects, and must have at "
                "least one email object with a valid email address.",
                f"personalizations.{i}.to",
            )
            continue
        if "substitutions" in p and str(template_id or "").startswith("d-"):
            err(
                "Substitutions may not be used with dynamic templating",
                f"personalizations.{i}.substitutions",
            )
        for kind in ("to", "cc", "bcc"):
            for j, r in enumerate(p.get(kind) or []):
                recipients += 1
                r = r if isinstance(r, dict) else {}
                addr = r.get("email", "")
                where = f"personalizations.{i}.{kind}.{j}.email"
                problem = address_problem(addr)
                if problem:
                    err(problem, where, f"{_HELP}#personalizations.to")
                    continue
                name = r.get("name")
                if isinstance(name, str) and (";" in name or "," in name):
                    err(
                        "The to.name, cc.name, and bcc.name cannot include ; or , characters.",
                        f"personalizations.{i}.{kind}.{j}.name",
                    )
                low = str(addr).lower()
                if low in seen:
                    err(
                        "Each email address in the personalization block should be unique between "
                        f"to, cc, and bcc. We found the first duplicate instance of [{addr}] in "
                        f"the {seen[low]} field.",
                        where,
                    )
                else:
                    seen[low] = f"personalizations.{i}.{kind}"
        args = p.get("custom_args") or {}
        if not isinstance(args, dict) or any(not isinstance(v, str) for v in args.values()):
            err(
                "Invalid type. Expected: string, given: number.",
                f"personalizations.{i}.custom_args",
            )
        elif _custom_args_bytes(body.get("custom_args"), args) >= MAX_CUSTOM_ARGS_BYTES:
            err(
                f"The total length of custom arguments must be less than "
                f"{MAX_CUSTOM_ARGS_BYTES} bytes.",
                f"personalizations.{i}.custom_args",
            )
        p_headers = p.get("headers")
        if isinstance(p_headers, dict):
            for hname in p_headers:
                if str(hname).strip().lower() in RESERVED_HEADERS:
                    err(
                        f"The header {hname} is reserved and cannot be set in the headers "
                        "parameter.",
                        f"personalizations.{i}.headers.{hname}",
                    )
    if recipients > MAX_RECIPIENTS:
        err(
            f"There is a limit of {MAX_RECIPIENTS} total recipients (to + cc + bcc) per request.",
            "personalizations",
        )
    return errs


class SinkServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        port: int,
        state: SinkState,
        emitter: EventEmitter,
        api_key: str | None,
        webhook_secret: str | None,
        faults: FaultPlan,
    ) -> None:
        self.flight = threading.Condition()
        self._tickets = 0
        self.unparsed: dict[int, int] = {}  # connection -> ticket, until its first request
        self.idle: dict[int, socket.socket] = {}  # kept-alive connections between requests
        self.parsed: dict[int, int] = {}  # connection -> requests parsed on it
        self.in_flight: dict[int, int] = {}  # provider request ticket -> connection
        super().__init__(("127.0.0.1", port), _SinkHandler)
        self.state = state
        self.emitter = emitter
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.set_faults(faults)

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that gave up (timeouts, injected drops) are expected: no traceback spam.
        log.debug("sink: client %s went away", client_address)

    # ------------------------------------------------------------- requests in flight
    # Reconciliation must not answer "not received" for a request the sink has accepted but
    # not stored yet. Every connection gets a ticket when it is accepted, and every provider
    # request one when its request line is read; a reconciliation query waits until nothing
    # with an older ticket is still unparsed or being processed.

    def _ticket(self) -> int:
        self._tickets += 1
        return self._tickets

    def process_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        with self.flight:
            self.unparsed[id(request)] = self._ticket()
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:  # type: ignore[no-untyped-def]
        with self.flight:
            self.unparsed.pop(id(request), None)
            self.idle.pop(id(request), None)
            self.parsed.pop(id(request), None)
            self.flight.notify_all()
        super().shutdown_request(request)

    def request_parsed(self, connection: object, provider_request: bool) -> int | None:
        """The connection's request line is read; returns a ticket for a provider request."""
        conn = id(connection)
        with self.flight:
            self.unparsed.pop(conn, None)
            self.idle.pop(conn, None)
            self.parsed[conn] = self.parsed.get(conn, 0) + 1
            ticket = self._ticket()
            if provider_request:
                self.in_flight[ticket] = conn
            self.flight.notify_all()
        return ticket if provider_request else None

    def request_settled(self, ticket: int | None) -> None:
        """A provider request is stored, refused or dropped: reconciliation may answer."""
        if ticket is None:
            return
        with self.flight:
            self.in_flight.pop(ticket, None)
            self.flight.notify_all()

    def connection_idle(self, connection: socket.socket) -> None:
        """A kept-alive connection waits for its next request."""
        with self.flight:
            self.idle[id(connection)] = connection

    def wait_settled(self, timeout: float) -> bool:
        """Block until every request that reached the sink before now is stored or refused.

        Older tickets cover new connections and requests being processed; a kept-alive
        connection with unread bytes holds a request that has arrived but is not parsed yet.
        """
        with self.flight:
            barrier = self._ticket()
            idle = list(self.idle.items())
            seen = {conn: self.parsed.get(conn, 0) for conn, _ in idle}
        readable: set[int] = set()
        if idle:
            try:
                ready, _, _ = select.select([c for _, c in idle], [], [], 0)
            except (OSError, ValueError):  # a connection closed meanwhile
                ready = []
            readable = {id(c) for c in ready}
        with self.flight:
            waiting = {conn: seen[conn] for conn in readable}

            def settled() -> bool:
                if any(t < barrier for t in self.in_flight):
                    return False
                if any(t < barrier for t in self.unparsed.values()):
                    return False
                busy = set(self.in_flight.values())
                return all(
                    conn not in self.parsed  # closed
                    or (self.parsed[conn] > seen and conn not in busy)
                    for conn, seen in waiting.items()
                )

            return self.flight.wait_for(settled, timeout)

    def set_faults(self, plan: FaultPlan) -> None:
        self.faults = plan
        self.fault_rng = random.Random(plan.seed)
        self.fault_count = 0
        self.fault_lock = threading.Lock()

    def next_fault(self) -> str | None:
        with self.fault_lock:
            plan = self.faults
            self.fault_count += 1
            if self.fault_count <= plan.first_n or (
                plan.rate and self.fault_rng.random() < plan.rate
            ):
                return self.fault_rng.choice(plan.kinds) if plan.kinds else None
            return None


class _SinkHandler(BaseHTTPRequestHandler):
    server: SinkServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("sink: " + format, *args)

    def handle_one_request(self) -> None:
        super().handle_one_request()
        if not self.close_connection:
            self.server.connection_idle(self.connection)

    def parse_request(self) -> bool:
        ok = super().parse_request()
        path = urlsplit(self.path).path if ok else ""
        provider = self.command == "POST" and not path.startswith("/_sink/")
        self._ticket = self.server.request_parsed(self.connection, ok and provider)
        return ok

    def _reply(self, status: int, body: object | None = None, headers: dict | None = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/_sink/stats":
            self._reply(
                200,
                {
                    **self.server.state.stats(),
                    "events_posted": self.server.emitter.posted_events,
                    "faults": asdict(self.server.faults),
                },
            )
        else:
            self._reply(404, {"errors": [{"message": "not found", "field": None, "help": None}]})

    def do_POST(self) -> None:  # noqa: N802
        try:
            self._post()
        finally:
            self.server.request_settled(self._ticket)

    def _post(self) -> None:
        length = (self.headers.get("Content-Length") or "0").strip()
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            # Unread body: answer and close rather than parse garbage as the next request.
            self.close_connection = True
            self._reply(
                413 if length.isdigit() else 400,
                {
                    "errors": [
                        {"message": "bad or too large Content-Length", "field": None, "help": None}
                    ]
                },
                {"Connection": "close"},
            )
            return None
        raw = self.rfile.read(int(length))
        path = urlsplit(self.path).path
        if path.startswith("/_sink/"):
            return self._control(path, raw)
        fault = self.server.next_fault()
        if fault in ("429", "500", "503"):
            return self._fault_reply(path, fault)
        if fault == "drop":
            self.server.state.log_request(path, 0, 0, "drop")
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if self.server.faults.processing_s > 0:
            time.sleep(self.server.faults.processing_s)
        if path == "/v3/mail/send":
            status = self._mail_send(raw)
        elif path in ("/v3/mail/batch", "/v3/user/scheduled_sends"):
            status = self._scheduled_sends(path, raw)
        elif (m := _TWILIO_PATH.match(path)) is not None:
            status = self._twilio(m.group(1), raw)
        elif path == "/webhook/push":
            status = self._webhook(raw)
        else:
            self._reply(404, {"errors": [{"message": "not found", "field": None, "help": None}]})
            return None
        # Stored (or refused) now; only the answer is still to come.
        self.server.request_settled(self._ticket)
        if fault == "slow":
            # Recorded already; the answer comes after the client gave up (an ambiguous timeout).
            self.server.state.log_request(path, status, 0, "slow")
            time.sleep(self.server.faults.slow_s)
        self._send_prepared(status)
        return None

    def _fault_reply(self, path: str, fault: str) -> None:
        self.server.state.log_request(path, int(fault), 0, fault)
        if fault == "429":
            wait = self.server.faults.retry_after_s
            headers = {
                "Retry-After": f"{wait:g}",
                "X-RateLimit-Limit": 600,
                "X-RateLimit-Remaining": 0,
                "X-RateLimit-Reset": f"{time.time() + wait:.3f}",
            }
            self._reply(
                429,
                {"errors": [{"field": None, "message": "too many requests", "help": None}]},
                headers,
            )
        else:
            self._reply(
                int(fault), {"errors": [{"field": None, "message": "internal error", "help": None}]}
            )

    # Each provider handler stores the messages and prepares the response; the response is
    # sent afterwards so the 'slow' fault can delay it.
    def _send_prepared(self, status: int) -> None:
        body, headers = self._prepared
        self._reply(status, body, headers)

    def _sendgrid_auth(self, path: str) -> bool:
        auth = self.headers.get("Authorization", "")
        expected = self.server.api_key
        if (
            not auth.startswith("Bearer ")
            or not auth[7:].strip()
            or (expected and auth[7:] != expected)
        ):
            self._prepared = (
                {
                    "errors": [
                        {
                            "field": None,
                            "message": "The provided authorization grant is invalid, expired, or revoked",
                            "help": None,
                        }
                    ]
                },
                {},
            )
            self.server.state.log_request(path, 401, 0, None)
            return False
        return True

    def _scheduled_sends(self, path: str, raw: bytes) -> int:
        """``POST /v3/mail/batch`` (a new batch id) and ``POST /v3/user/scheduled_sends``."""
        if not self._sendgrid_auth(path):
            return 401
        state = self.server.state
        if path == "/v3/mail/batch":
            batch_id = state.create_batch()
            state.log_request(path, 201, 0, None)
            self._prepared = ({"batch_id": batch_id}, {})
            return 201
        try:
            data = json.loads(raw)
            batch_id, status = data["batch_id"], data["status"]
        except (ValueError, KeyError, TypeError):
            data, batch_id, status = None, None, None
        if not isinstance(batch_id, str) or status not in ("pause", "cancel"):
            problem, field_ = 'the body must be {"batch_id": ..., "status": "pause"|"cancel"}', None
        else:
            problem, field_ = state.set_batch_status(batch_id, status, time.time()), "batch_id"
        if problem:
            self._prepared = ({"errors": [{"field": field_, "message": problem, "help": None}]}, {})
            state.log_request(path, 400, 0, None)
            return 400
        state.log_request(path, 201, 0, None)
        self._prepared = ({"batch_id": batch_id, "status": status}, {})
        return 201

    def _mail_send(self, raw: bytes) -> int:
        if not self._sendgrid_auth("/v3/mail/send"):
            return 401
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        errors = sendgrid_errors(body, self.server.state.batch_ids(), raw_size=len(raw))
        if errors:
            self._prepared = ({"errors": errors}, {})
            self.server.state.log_request("/v3/mail/send", 400, 0, None)
            return 400
        now = time.time()
        msg_id = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()[:16]).decode().rstrip("=")
        records = []
        for p in body["personalizations"]:
            args = {**(body.get("custom_args") or {}), **(p.get("custom_args") or {})}
            records.append(
                {
                    "message_key": args.get("message_key", ""),
                    "channel": args.get("channel", "email"),
                    "provider": "sendgrid",
                    "address": p["to"][0]["email"],
                    "campaign_id": args.get("campaign_id", ""),
                    "customer_id": args.get("customer_id", ""),
                    "as_of_date": args.get("as_of_date", ""),
                    "duration_days": args.get("duration_days", "7"),
                    "template_id": body.get("template_id"),
                    "provider_message_id": msg_id,
                    "dynamic_template_data": p.get("dynamic_template_data"),
                    "batch_id": body.get("batch_id"),
                    "send_at": body.get("send_at"),
                    "received_at": now,
                }
            )
        self.server.state.store(records)
        self.server.state.log_request("/v3/mail/send", 202, len(records), None)
        self.server.emitter.submit(records)
        self._prepared = (None, {"X-Message-Id": msg_id})
        return 202

    def _twilio(self, sid: str, raw: bytes) -> int:
        auth = self.headers.get("Authorization", "")
        user = ""
        if auth.startswith("Basic "):
            try:
                user, _, token = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                user, token = "", ""
        if not user or user != sid or not token:
            self._prepared = (
                {
                    "code": 20003,
                    "message": "Authenticate",
                    "more_info": "https://www.twilio.com/docs/errors/20003",
                    "status": 401,
                },
                {},
            )
            self.server.state.log_request("twilio", 401, 0, None)
            return 401
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        to, body = form.get("To", ""), form.get("Body", "")
        problem = None
        if not to:
            problem = (21604, "A 'To' phone number is required.")
        elif not _E164_RE.match(to):
            problem = (21211, f"The 'To' number {to} is not a valid phone number.")
        elif not (form.get("From") or form.get("MessagingServiceSid")):
            problem = (21603, "A 'From' phone number is required.")
        elif not body:
            problem = (21602, "Message body is required.")
        if problem:
            self._prepared = (
                {
                    "code": problem[0],
                    "message": problem[1],
                    "more_info": f"https://www.twilio.com/docs/errors/{problem[0]}",
                    "status": 400,
                },
                {},
            )
            self.server.state.log_request("twilio", 400, 0, None)
            return 400
        callback = parse_qs(urlsplit(form.get("StatusCallback", "")).query)
        arg = {k: v[0] for k, v in callback.items()}
        msg_sid = "SM" + hashlib.sha256(raw + str(time.time_ns()).encode()).hexdigest()[:32]
        record = {
            "message_key": arg.get("message_key", ""),
            "channel": "sms",
            "provider": "twilio",
            "address": to,
            "campaign_id": arg.get("campaign_id", ""),
            "customer_id": arg.get("customer_id", ""),
            "as_of_date": arg.get("as_of_date", ""),
            "duration_days": arg.get("duration_days", "7"),
            "template_id": None,
            "provider_message_id": msg_sid,
            "body": body,
            "received_at": time.time(),
        }
        self.server.state.store([record])
        self.server.state.log_request("twilio", 201, 1, None)
        self.server.emitter.submit([record])
        now = dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
        self._prepared = (
            {
                "sid": msg_sid,
                "account_sid": sid,
                "to": to,
                "from": form.get("From"),
                "body": body,
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "date_created": now,
                "date_updated": now,
                "date_sent": None,
                "error_code": None,
                "error_message": None,
                "price": None,
                "price_unit": "USD",
                "uri": f"/2010-04-01/Accounts/{sid}/Messages/{msg_sid}.json",
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "num_media": "0",
                "subresource_uris": {},
            },
            {},
        )
        return 201

    def _webhook(self, raw: bytes) -> int:
        secret = self.server.webhook_secret
        if secret and not webhook_signing.verify(
            secret,
            self.headers.get(webhook_signing.TIMESTAMP_HEADER, ""),
            raw,
            self.headers.get(webhook_signing.SIGNATURE_HEADER, ""),
        ):
            self._prepared = ({"error": "bad signature"}, {})
            self.server.state.log_request("/webhook/push", 401, 0, None)
            return 401
        try:
            msgs = json.loads(raw)["messages"]
        except (ValueError, KeyError, TypeError):
            self._prepared = ({"error": 'body must be {"messages": [...]}'}, {})
            return 400
        now = time.time()
        records = [
            {
                "message_key": m.get("message_key", ""),
                "channel": "webhook",
                "provider": "webhook",
                "address": m.get("customer_id", ""),
                "campaign_id": m.get("campaign_id", ""),
                "customer_id": m.get("customer_id", ""),
                "as_of_date": m.get("as_of_date", ""),
                "duration_days": m.get("duration_days", 7),
                "template_id": m.get("template_id"),
                "received_at": now,
            }
            for m in msgs
        ]
        self.server.state.store(records)
        self.server.state.log_request("/webhook/push", 200, len(records), None)
        self.server.emitter.submit(records)
        self._prepared = ({"accepted": len(records)}, {})
        return 200

    def _control(self, path: str, raw: bytes) -> None:
        data = json.loads(raw) if raw else {}
        if path == "/_sink/received":
            if not self.server.wait_settled(timeout=float(data.get("wait_s", 60.0))):
                self._reply(503, {"error": "requests still in flight; ask again"})
                return
            counts = self.server.state.key_counts
            with self.server.state.lock:
                got = [k for k in data.get("keys", []) if counts.get(k)]
            self._reply(200, {"received": got})
        elif path == "/_sink/faults":
            try:
                self.server.set_faults(FaultPlan.from_dict(data))
            except (TypeError, ValueError) as exc:
                self._reply(400, {"error": str(exc)})
                return
            self._reply(200, asdict(self.server.faults))
        elif path == "/_sink/flush":
            self.server.emitter.flush()
            self._reply(200, {"events_posted": self.server.emitter.posted_events})
        else:
            self._reply(404, {"error": "not found"})


@dataclass
class SinkHandle:
    """A running sink (and, unless an external one is used, the event endpoint)."""

    url: str
    events_url: str | None
    public_key: str
    folder: Path
    server: SinkServer = field(repr=False)

    def stats(self) -> dict:
        return self.server.state.stats()

    def set_faults(self, plan: FaultPlan | None) -> None:
        self.server.set_faults(plan or FaultPlan())

    def flush(self, timeout: float = 120.0) -> None:
        self.server.emitter.flush(timeout)

    def received(self) -> list[dict]:
        """Every message received, except those of cancelled scheduled batches (discarded)."""
        state = self.server.state
        with open(state.received_path, encoding="utf-8") as fh:
            records = [json.loads(line) for line in fh]
        return [r for r in records if not state.is_cancelled(r.get("batch_id"))]


@contextmanager
def running_sink(
    data_dir: Path | str,
    port: int = 0,
    landing_dir: Path | str | None = None,
    events_url: str | None = None,
    with_events: bool = True,
    events_port: int = 0,
    seed: int = 0,
    faults: FaultPlan | None = None,
    api_key: str | None = None,
    webhook_secret: str | None = None,
) -> Iterator[SinkHandle]:
    """Run the sink (state in ``data_dir/sink``) and, by default, Tessera's event endpoint
    landing into ``landing_dir`` (default ``data_dir/landing``), both on 127.0.0.1 threads."""
    data_dir = Path(data_dir)
    folder = data_dir / "sink"
    key = load_or_create_private_key(folder / "event_webhook_private_key.pem")
    pub = public_key_b64(key)
    with _maybe_events(
        with_events and events_url is None,
        data_dir,
        landing_dir,
        pub,
        events_port,
    ) as own_url:
        target = events_url or own_url
        state = SinkState(folder)
        emitter = EventEmitter(target, key, seed, pending_path=folder / "pending_events.jsonl")
        emitter.is_cancelled = state.is_cancelled
        server = SinkServer(port, state, emitter, api_key, webhook_secret, faults or FaultPlan())
        thread = threading.Thread(target=server.serve_forever, name="tessera-sink", daemon=True)
        thread.start()
        handle = SinkHandle(
            f"http://127.0.0.1:{server.server_address[1]}", target, pub, folder, server
        )
        try:
            yield handle
        finally:
            emitter.flush(timeout=60)
            server.shutdown()
            server.server_close()
            emitter.close()
            state.close()


@contextmanager
def _maybe_events(
    enabled: bool, data_dir: Path, landing_dir: Path | str | None, pub: str, port: int
) -> Iterator[str | None]:
    from tessera.activations.events import EventReceiver, running_events

    if not enabled:
        yield None
        return
    receiver = EventReceiver(Path(landing_dir) if landing_dir else Path(data_dir) / "landing", pub)
    with running_events(receiver, port=port) as url:
        yield url
