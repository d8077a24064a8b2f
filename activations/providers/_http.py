"""HTTP helpers shared by providers: sink reconciliation and log redaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import requests

from activations.providers.base import redact

SINK_TIMEOUT_S = 30.0


def sink_received(sink_url: str, keys: Iterable[str]) -> set[str]:
    """Keys the local sink has recorded (its reconciliation endpoint)."""
    keys = list(keys)
    if not keys:
        return set()
    resp = requests.post(
        f"{sink_url.rstrip('/')}/_sink/received", json={"keys": keys}, timeout=SINK_TIMEOUT_S
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
