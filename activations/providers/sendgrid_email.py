"""SendGrid email through the official client: v3 mail/send with dynamic templates."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import urllib.error
from collections.abc import Iterable, Sequence
from typing import Any

import python_http_client.exceptions as sg_exc
from sendgrid import SendGridAPIClient

from activations.errors import ProviderConfigError
from activations.providers import _http
from activations.providers.base import (
    Message,
    PermanentError,
    Provider,
    TransientError,
    clean_secret,
    parse_retry_after,
    plan_unique_batches,
    redact,
)

GLOBAL_HOST = "https://api.sendgrid.com"
EU_HOST = "https://api.eu.sendgrid.com"

#: SendGrid's limits per request (personalizations and recipients alike).
MAX_PERSONALIZATIONS = 1000

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
        "categories": list(dict.fromkeys(["tessera", first.campaign_id[:255]])),
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
        body = build_mail_body(
            batch, self.from_email, self.from_name, self.sandbox, self.asm_group_id
        )
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
        # The real API has no idempotency key; only the local sink can answer.
        if not self.sink_url:
            return None
        return _http.sink_received(self.sink_url, keys, _http.settle_seconds(self.timeout_s))

    def flush(self) -> None:
        if self.sink_url:
            _http.sink_flush(self.sink_url)
