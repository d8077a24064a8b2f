"""A generic signed webhook (push-like): JSON batches signed with HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Sequence

import requests

from tessera.activations.providers import _http
from tessera.activations.providers.base import (
    Message,
    PermanentError,
    Provider,
    TransientError,
    clean_secret,
    parse_retry_after,
    redact,
)

SIGNATURE_HEADER = "X-Tessera-Signature"
TIMESTAMP_HEADER = "X-Tessera-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` over ``timestamp + '.' + raw body`` (Stripe-style, replay-resistant)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, tolerance_s: float = 600
) -> bool:
    """Constant-time check of a webhook signature and its timestamp freshness."""
    try:
        fresh = abs(time.time() - float(timestamp)) <= tolerance_s
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature or "")


class WebhookProvider(Provider):
    """POSTs ``{"messages": [...]}`` to a URL; the batch key is sent as Idempotency-Key."""

    name = "webhook"
    max_batch = 500

    def __init__(
        self, url: str, secret: str, timeout_s: float = 30.0, sink_url: str | None = None
    ) -> None:
        self.url = url
        self._secret = clean_secret(secret) or ""
        self._secrets = [self._secret, secret]
        self.timeout_s = timeout_s
        self.sink_url = sink_url
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"WebhookProvider(url={self.url!r})"

    def send_batch(self, batch: Sequence[Message]) -> dict[str, str | None]:
        body = json.dumps(
            {
                "messages": [
                    {
                        "message_key": m.key,
                        "campaign_id": m.campaign_id,
                        "customer_id": m.customer_id,
                        "as_of_date": m.as_of_date,
                        "duration_days": m.duration_days,
                        "template_id": m.template_id,
                        "data": m.data,
                    }
                    for m in batch
                ]
            },
            separators=(",", ":"),
        ).encode()
        ts = str(int(time.time()))
        idem = hashlib.sha256("|".join(sorted(m.key for m in batch)).encode()).hexdigest()[:32]
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: ts,
            SIGNATURE_HEADER: sign(self._secret, ts, body),
            "Idempotency-Key": idem,
        }
        try:
            resp = self._session.post(self.url, data=body, headers=headers, timeout=self.timeout_s)
        except requests.exceptions.ConnectTimeout:
            raise TransientError("connect timeout") from None
        except requests.exceptions.Timeout:
            raise TransientError(f"timeout after {self.timeout_s}s", ambiguous=True) from None
        except requests.exceptions.ConnectionError:
            raise TransientError("connection error", ambiguous=True) from None
        excerpt = redact(resp.text, self._secrets)
        if resp.status_code == 429 or resp.status_code >= 500:
            raise TransientError(
                f"HTTP {resp.status_code}",
                resp.status_code,
                excerpt,
                parse_retry_after(resp.headers, time.time()),
            )
        if resp.status_code >= 400:
            raise PermanentError(
                f"HTTP {resp.status_code}: {excerpt[:200]}", resp.status_code, excerpt
            )
        return {m.key: None for m in batch}

    def reconcile(self, keys: Iterable[str]) -> set[str] | None:
        if not self.sink_url:
            return None
        return _http.sink_received(self.sink_url, keys, _http.settle_seconds(self.timeout_s))

    def flush(self) -> None:
        if self.sink_url:
            _http.sink_flush(self.sink_url)
