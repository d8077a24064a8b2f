"""The provider interface: send one batch, classify errors, reconcile keys whose outcome is unknown."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

#: Response excerpts kept in the ledger are this long at most.
EXCERPT_CHARS = 500


@dataclass(frozen=True)
class Message:
    """One outbound message as a provider sees it."""

    key: str
    campaign_id: str
    customer_id: str
    channel: str
    address: str
    template_id: str
    as_of_date: str
    duration_days: int = 0
    data: dict[str, Any] = field(default_factory=dict)


def messages_from_frame(df: pd.DataFrame) -> list[Message]:
    """Turn outbound-message rows into ``Message`` objects (personalization JSON parsed)."""
    dates = pd.to_datetime(df["as_of_date"]).dt.strftime("%Y-%m-%d").tolist()
    if "duration_days" in df:
        durations = df["duration_days"].fillna(0).astype(int).tolist()
    else:
        durations = [0] * len(df)
    loads = json.loads
    return [
        Message(k, cp, cu, ch, ad, t, d, du, loads(p) if p else {})
        for k, cp, cu, ch, ad, t, d, du, p in zip(
            df["message_key"].tolist(),
            df["campaign_id"].tolist(),
            df["customer_id"].tolist(),
            df["channel"].tolist(),
            df["address"].tolist(),
            df["template_id"].tolist(),
            dates,
            durations,
            df["personalization"].tolist(),
            strict=True,
        )
    ]


class ProviderError(Exception):
    """A provider call failed; ``excerpt`` is the (secret-free) response body excerpt."""

    def __init__(self, message: str, status_code: int | None = None, excerpt: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.excerpt = excerpt[:EXCERPT_CHARS]


class TransientError(ProviderError):
    """Worth retrying (429, 5xx, timeout, dropped connection).

    ``ambiguous`` means the provider may have accepted the request (timeout or connection lost
    after the body was sent): before retrying, the sender reconciles the batch's keys.
    """

    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        excerpt: str = "",
        retry_after: float | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message, status_code, excerpt)
        self.retry_after = retry_after
        self.ambiguous = ambiguous


class PermanentError(ProviderError):
    """A 4xx that says the request is wrong: never retried as is.

    ``per_message`` maps keys to reasons when the provider named the offending messages; the
    rest of the batch is then resent without them.
    """

    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        excerpt: str = "",
        per_message: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, status_code, excerpt)
        self.per_message = per_message or {}


class Provider(ABC):
    """One way of reaching customers. Implementations must be thread-safe for ``send_batch``."""

    name: str = "provider"
    max_batch: int = 1

    def plan_batches(self, messages: Sequence[Message]) -> list[list[Message]]:
        """Split messages into requests: at most ``max_batch``, never one address twice."""
        return plan_unique_batches(messages, self.max_batch, group=lambda m: (m.campaign_id,))

    @abstractmethod
    def send_batch(self, batch: Sequence[Message]) -> dict[str, str | None]:
        """Send one request; return provider message ids by key, or raise a ProviderError."""

    def reconcile(self, keys: Iterable[str]) -> set[str] | None:
        """Keys the provider is known to have accepted, or None when it cannot tell."""
        return None

    def flush(self) -> None:
        """Block until side effects of earlier sends (e.g. the sink's events) are delivered."""
        return None


def plan_unique_batches(
    messages: Sequence[Message], max_batch: int, group: Any
) -> list[list[Message]]:
    """Batches of at most ``max_batch`` messages per group, with no address twice in a batch.

    Addresses compare case-insensitively (SendGrid rejects a request with duplicates only in
    case); a repeated address goes to the next batch of its group that does not hold it.
    """
    groups: dict[Any, list[tuple[list[Message], set[str]]]] = {}
    for m in messages:
        slots = groups.setdefault(group(m), [])
        addr = m.address.lower()
        for batch, seen in slots:
            if len(batch) < max_batch and addr not in seen:
                batch.append(m)
                seen.add(addr)
                break
        else:
            slots.append(([m], {addr}))
    return [batch for slots in groups.values() for batch, _ in slots]


_SECRET_PATTERNS = [
    re.compile(r"SG\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"),
    re.compile(r"(?i)(bearer|basic)\s+[A-Za-z0-9+/=._\-]+"),
]


_QUOTES = ('"', "'")


def clean_secret(value: str | None) -> str | None:
    """A secret as loaded: surrounding whitespace and one pair of surrounding quotes removed.

    Mounted secret files end in a newline and .env files often quote values; neither is ever
    part of an API key, and either makes a header invalid. None (or nothing left) means unset.
    """
    if value is None:
        return None
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in _QUOTES:
        text = text[1:-1].strip()
    return text or None


def secret_forms(secret: str) -> list[str]:
    """Every way a secret can appear in an error text: raw, stripped, cleaned, escaped."""
    forms: set[str] = set()
    for s in {secret, secret.strip(), clean_secret(secret) or ""}:
        if not s:
            continue
        forms |= {
            s,
            repr(s)[1:-1],  # "Invalid header value b'Bearer SG...\\n'" and str reprs
            repr(s.encode("utf-8", "backslashreplace"))[2:-1],
            json.dumps(s)[1:-1],
            s.encode("unicode_escape").decode("ascii"),
        }
        # each line of a key with an embedded newline, when long enough to identify it
        forms |= {line.strip() for line in s.splitlines() if len(line.strip()) >= 12}
    # longest first, so a form is never half-replaced by a shorter one
    return sorted((f for f in forms if len(f) >= 4), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove known secrets (every form) and anything shaped like an API key or auth header."""
    for secret in secrets:
        if secret:
            for form in secret_forms(secret):
                text = text.replace(form, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub("***", text)
    return text


def parse_retry_after(headers: Any, now: float) -> float | None:
    """Seconds to wait from Retry-After or X-RateLimit-Reset (epoch seconds).

    Retry-After is either delay-seconds or an HTTP date (RFC 9110 section 10.2.3), e.g.
    ``Wed, 21 Oct 2026 07:28:00 GMT``; a date is turned into seconds from ``now``.
    """
    if not headers:
        return None
    get = headers.get
    value = get("Retry-After") or get("retry-after")
    if value:
        seconds = _retry_after_seconds(str(value).strip(), now)
        if seconds is not None:
            return seconds
    reset = get("X-RateLimit-Reset") or get("x-ratelimit-reset")
    if reset:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            pass
    return None


def _retry_after_seconds(value: str, now: float) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # nan/inf are not a delay; a provider never means "wait forever" by them.
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - now)
