"""HTTP helpers shared by providers: sink reconciliation and log redaction."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import requests

from tessera.activations.providers.base import redact

SINK_TIMEOUT_S = 90.0
#: The longest a reconciliation waits out the client timeout before it asks (see below).
MAX_SETTLE_S = 2.0


def settle_seconds(client_timeout_s: float) -> float:
    """How long to wait before asking whether an ambiguous request arrived."""
    return max(0.0, min(client_timeout_s, MAX_SETTLE_S))


def sink_received(sink_url: str, keys: Iterable[str], settle_s: float = 0.0) -> set[str]:
    """Keys the local sink has recorded (its reconciliation endpoint).

    A request that timed out on the client may still be on its way or being processed.
    The sink answers only once every request that reached it before the query is stored or
    refused; ``settle_s`` (the client timeout, capped) first covers bytes still travelling
    on a kept-alive connection. "Not received" is then final.
    """
    keys = list(keys)
    if not keys:
        return set()
    if settle_s > 0:
        time.sleep(settle_s)
    resp = requests.post(
        f"{sink_url.rstrip('/')}/_sink/received",
        json={"keys": keys, "wait_s": SINK_TIMEOUT_S - 30.0},
        timeout=SINK_TIMEOUT_S,
    )
    resp.raise_for_status()
    return set(resp.json()["received"])


def sink_flush(sink_url: str, timeout: float = 120.0) -> None:
    """Ask the sink to deliver its queued provider events before returning."""
    requests.post(f"{sink_url.rstrip('/')}/_sink/flush", timeout=timeout).raise_for_status()


class RedactingFilter(logging.Filter):
    """Scrubs secrets from log records of third-party clients (python_http_client logs headers)."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message, self.secrets)
        record.args = None
        return True


def install_redaction(logger_name: str, secrets: Iterable[str | None]) -> None:
    """Attach a redacting filter to a library logger (idempotent per secret set)."""
    logger = logging.getLogger(logger_name)
    secrets = [s for s in secrets if s]
    for f in logger.filters:
        if isinstance(f, RedactingFilter):
            f.secrets = sorted(set(f.secrets) | set(secrets))
            return
    logger.addFilter(RedactingFilter(secrets))
