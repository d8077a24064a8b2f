"""SendGrid email through the official client: v3 mail/send with dynamic templates."""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import threading
import time
import urllib.error
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import python_http_client.exceptions as sg_exc
from sendgrid import SendGridAPIClient

from tessera.activations.errors import ProviderConfigError
from tessera.activations.providers import _http
from tessera.activations.providers.base import (
    Message,
    PermanentError,
    Provider,
    TransientError,
    clean_secret,
    parse_retry_after,
    plan_unique_batches,
    redact,
)
from tessera.activations.providers.sendgrid_rules import (
    CANCEL_BEFORE_S,
    MAX_CATEGORY_CHARS,
    MAX_PERSONALIZATIONS,
    MAX_SEND_AHEAD_S,
    address_problem,
)

log = logging.getLogger(__name__)

GLOBAL_HOST = "https://api.sendgrid.com"
EU_HOST = "https://api.eu.sendgrid.com"

_FIELD_INDEX = re.compile(r"^personalizations\.(\d+)")


def build_mail_body(
    batch: Sequence[Message],
    from_email: str,
    from_name: str = "",
    sandbox: bool = False,
    asm_group_id: int | None = None,
) -> dict[str, Any]:
    """A v3 mail/send body: one dynamic template, one personalization per recipient.

    The message key travels in each personalization's ``custom_args`` so that provider events
    (and the local sink) can be tied back to the ledger. No substitutions and no
    ``is_multiple`` (both break dynamic template data).
    """
    first = batch[0]
    personalizations = [
        {
            "to": [{"email": m.address}],
            "dynamic_template_data": m.data,
            "custom_args": {
                "message_key": m.key,
                "campaign_id": m.campaign_id,
                "customer_id": m.customer_id,
                "as_of_date": m.as_of_date,
                "channel": m.channel,
                "duration_days": str(m.duration_days),
            },
        }
        for m in batch
    ]
    sender: dict[str, str] = {"email": from_email}
    if from_name:
        sender["name"] = from_name
    body: dict[str, Any] = {
        "from": sender,
        "template_id": first.template_id,
        "personalizations": personalizations,
        # Categories must be unique (a campaign called "tessera" would repeat the first).
        "categories": list(dict.fromkeys(["tessera", first.campaign_id[:MAX_CATEGORY_CHARS]])),
    }
    if asm_group_id is not None:
        body["asm"] = {"group_id": asm_group_id}
    if sandbox:
        body["mail_settings"] = {"sandbox_mode": {"enable": True}}
    return body


class SendGridProvider(Provider):
    """Email via ``sendgrid.SendGridAPIClient`` (host: global, EU or the local sink)."""

    name = "sendgrid"
    max_batch = MAX_PERSONALIZATIONS

    def __init__(
        self,
        api_key: str,
        from_email: str,
        from_name: str = "",
        host: str = GLOBAL_HOST,
        timeout_s: float = 30.0,
        sandbox: bool = False,
        asm_group_id: int | None = None,
        sink_url: str | None = None,
        send_ahead_s: float | None = None,
        journal_path: Path | None = None,
    ) -> None:
        raw_key = api_key
        api_key = clean_secret(api_key) or ""
        if not api_key:
            # The client would silently fall back to $SENDGRID_API_KEY or send "Bearer None".
            raise ProviderConfigError("SendGrid needs an API key (SENDGRID_API_KEY)")
        self._api_key = api_key
        #: every form of the key as given, for redaction (the raw value may differ from it)
        self._secrets = [api_key, raw_key]
        self.host = host.rstrip("/")
        self.from_email = from_email
        self.from_name = from_name
        self.timeout_s = timeout_s
        self.sandbox = sandbox
        self.asm_group_id = asm_group_id
        self.sink_url = sink_url
        if send_ahead_s is not None:
            if send_ahead_s <= CANCEL_BEFORE_S:
                raise ProviderConfigError(
                    f"send_ahead_minutes must be more than {CANCEL_BEFORE_S // 60}: SendGrid "
                    "cancels no batch later than 10 minutes before its send_at"
                )
            if send_ahead_s > MAX_SEND_AHEAD_S:
                raise ProviderConfigError("send_ahead_minutes must be at most 72 hours (4320)")
            if journal_path is None:
                raise ProviderConfigError("scheduled sends need a journal file for their batches")
        self.send_ahead_s = send_ahead_s
        self.journal = ScheduleJournal(journal_path) if journal_path is not None else None
        self._local = threading.local()
        # python_http_client logs request headers (the bearer key) at DEBUG.
        _http.install_redaction("python_http_client.client", self._secrets)

    def __repr__(self) -> str:  # never show the key
        return f"SendGridProvider(host={self.host!r}, from_email={self.from_email!r})"

    def _client(self) -> SendGridAPIClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = SendGridAPIClient(api_key=self._api_key, host=self.host)
            client.client.timeout = self.timeout_s
            self._local.client = client
        return client

    def plan_batches(self, messages: Sequence[Message]) -> list[list[Message]]:
        return plan_unique_batches(
            messages, self.max_batch, group=lambda m: (m.campaign_id, m.template_id)
        )

    def send_batch(self, batch: Sequence[Message]) -> dict[str, str | None]:
        # An address SendGrid would refuse fails alone, before any request: the request that
        # leaves is one SendGrid accepts (and one bad row never holds up the rest).
        bad = {
            m.key: f"personalizations.{i}.to.0.email: {problem}"
            for i, m in enumerate(batch)
            if (problem := address_problem(m.address))
        }
        if bad:
            raise PermanentError(
                f"{len(bad)} address(es) SendGrid would refuse", None, "", per_message=bad
            )
        body = build_mail_body(
            batch, self.from_email, self.from_name, self.sandbox, self.asm_group_id
        )
        if self.send_ahead_s is not None and self.journal is not None:
            # Scheduled ahead under a batch of its own, journalled before the request leaves:
            # after a crash the batch can still be cancelled and its messages sent again.
            batch_id = self._create_batch()
            send_at = int(time.time() + self.send_ahead_s)
            self.journal.append(batch_id, send_at, [m.key for m in batch])
            body["batch_id"], body["send_at"] = batch_id, send_at
        error = self._post(batch, body)
        if isinstance(error, Exception):
            # Raised here, outside the except block, so no exception chain carries the key.
            raise error
        return error

    def _post(self, batch: Sequence[Message], body: dict[str, Any]) -> Any:
        try:
            response = self._client().client.mail.send.post(request_body=body)
        except sg_exc.HTTPError as exc:
            raise self._classify(exc, batch) from None
        except TimeoutError as exc:
            raise TransientError(f"timeout after {self.timeout_s}s", ambiguous=True) from exc
        except urllib.error.URLError as exc:
            reason = exc.reason
            refused = isinstance(reason, ConnectionRefusedError)
            raise TransientError(
                f"connection error: {type(reason).__name__}", ambiguous=not refused
            ) from None
        except (http.client.HTTPException, ConnectionError, OSError) as exc:
            raise TransientError(f"connection lost: {type(exc).__name__}", ambiguous=True) from None
        except (ValueError, TypeError, UnicodeError) as exc:
            # Raised while the request is built (before anything is sent), e.g. http.client's
            # "Invalid header value b'Bearer SG...'" for a key with a newline inside: a
            # configuration problem, and its text holds the key.
            text = redact(f"{type(exc).__name__}: {exc}", self._secrets)
            return PermanentError(
                f"the request could not be built: {text}; check SENDGRID_API_KEY", None, text
            )
        message_id = None
        headers = getattr(response, "headers", None)
        if headers is not None:
            message_id = headers.get("X-Message-Id")
        return {m.key: message_id for m in batch}

    def _classify(self, exc: sg_exc.HTTPError, batch: Sequence[Message]) -> Exception:
        status = int(exc.status_code)
        raw = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body)
        excerpt = redact(raw, self._secrets)
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(exc.headers, time.time())
            return TransientError(f"HTTP {status}", status, excerpt, retry_after=retry_after)
        per_message: dict[str, str] = {}
        whole_batch = False
        try:
            errors = json.loads(raw).get("errors", [])
        except (ValueError, AttributeError):
            errors = []
        for err in errors:
            match = _FIELD_INDEX.match(str(err.get("field") or ""))
            if match and int(match.group(1)) < len(batch):
                per_message[batch[int(match.group(1))].key] = (
                    f"{err.get('field')}: {err.get('message')}"
                )
            else:
                whole_batch = True
        if whole_batch or not per_message:
            per_message = {}
        return PermanentError(f"HTTP {status}: {excerpt[:200]}", status, excerpt, per_message)

    def reconcile(self, keys: Iterable[str]) -> set[str] | None:
        # The real API has no idempotency key; only the local sink can answer. With scheduled
        # sends, a request whose outcome is unknown is cancelled instead: then none of its
        # messages was accepted for delivery.
        keys = list(keys)
        if self.sink_url:
            return _http.sink_received(self.sink_url, keys, _http.settle_seconds(self.timeout_s))
        if self.journal is not None:
            _accepted, not_sent = self.recover_in_flight(keys)
            return set() if not_sent >= set(keys) else None
        return None

    def recover_in_flight(self, keys: Iterable[str]) -> tuple[set[str], set[str]]:
        """(accepted, not sent) among keys left in flight; the rest is unknown.

        Keys the journal never scheduled were never requested. Scheduled batches are
        cancelled through ``POST /v3/user/scheduled_sends``; SendGrid refuses that later than
        10 minutes before ``send_at`` and for more than 10 batches paused or cancelled at once,
        and the keys of a batch it refuses stay unknown.
        """
        keys = set(keys)
        if self.journal is None:
            return set(), set()
        latest = self.journal.latest_batches(keys)
        not_sent = keys - set(latest)
        by_batch: dict[str, set[str]] = {}
        for key, batch_id in latest.items():
            by_batch.setdefault(batch_id, set()).add(key)
        for batch_id, batch_keys in sorted(by_batch.items()):
            if self.journal.is_cancelled(batch_id) or self._cancel_batch(batch_id):
                not_sent |= batch_keys
        return set(), not_sent

    def _create_batch(self) -> str:
        try:
            response = self._client().client.mail.batch.post()
            return str(json.loads(response.body)["batch_id"])
        except sg_exc.HTTPError as exc:
            status = int(exc.status_code)
            raise TransientError(f"creating a batch id failed: HTTP {status}", status) from None
        except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
            # Nothing was scheduled yet: retrying is safe.
            raise TransientError(f"creating a batch id failed: {type(exc).__name__}") from None

    def _cancel_batch(self, batch_id: str) -> bool:
        """Cancel a scheduled batch; False when SendGrid refuses or cannot be reached."""
        try:
            self._client().client.user.scheduled_sends.post(
                request_body={"batch_id": batch_id, "status": "cancel"}
            )
        except sg_exc.HTTPError as exc:
            raw = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else ""
            log.warning(
                "SendGrid refused to cancel batch %s: HTTP %s %s",
                batch_id,
                exc.status_code,
                redact(raw, self._secrets)[:200],
            )
            return False
        except (OSError, http.client.HTTPException) as exc:
            log.warning("cancelling batch %s failed: %s", batch_id, type(exc).__name__)
            return False
        self.journal.mark_cancelled(batch_id)  # type: ignore[union-attr]
        return True

    def flush(self) -> None:
        if self.sink_url:
            _http.sink_flush(self.sink_url)


class ScheduleJournal:
    """Which SendGrid batch (and send_at) each key was scheduled under, appended before sending.

    One JSON line per scheduled request, and one per cancelled batch; read back after a crash.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, batch_id: str, send_at: int, keys: list[str]) -> None:
        self._write({"batch_id": batch_id, "send_at": send_at, "keys": keys})

    def mark_cancelled(self, batch_id: str) -> None:
        self._write({"batch_id": batch_id, "cancelled": True})

    def _write(self, record: dict) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())

    def _records(self) -> list[dict]:
        if not self.path.exists():
            return []
        with self._lock, open(self.path, encoding="utf-8") as fh:
            # a torn last line (a crash mid-write) was never followed by a request
            out = []
            for line in fh:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
            return out

    def latest_batches(self, keys: set[str]) -> dict[str, str]:
        """The batch each key was last scheduled under (keys never scheduled are absent)."""
        latest: dict[str, str] = {}
        for rec in self._records():
            for key in rec.get("keys") or ():
                if key in keys:
                    latest[key] = rec["batch_id"]
        return latest

    def is_cancelled(self, batch_id: str) -> bool:
        return any(r.get("cancelled") and r["batch_id"] == batch_id for r in self._records())
