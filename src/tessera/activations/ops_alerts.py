"""Alerts to the people who run Tessera (not to customers): a run that failed.

An unattended schedule that fails at 06:00 must not wait for someone to open the Dagster UI.
The alert goes through the provider layer's signed webhook (``WebhookProvider``: HMAC-signed,
an Idempotency-Key per run, so a receiver that sees a retried post can drop it), to the URL in
``TESSERA_OPS_WEBHOOK_URL`` with the secret in ``TESSERA_OPS_WEBHOOK_SECRET``. Without a URL
there is no alert target and the failure is only logged.

The alert carries what a person needs to act (job, date, failed steps, the first lines of the
error, a link to the run) and never a secret: the error text is redacted with every secret the
environment holds for Tessera before it leaves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from tessera.activations.providers.base import Message, clean_secret, redact
from tessera.activations.providers.webhook import WebhookProvider
from tessera.activations.settings import SECRET_VARS

URL_VAR = "TESSERA_OPS_WEBHOOK_URL"
SECRET_VAR = "TESSERA_OPS_WEBHOOK_SECRET"
#: The error text an alert carries at most (the whole trace stays in the run's logs).
ERROR_CHARS = 1000


class OpsAlertError(ValueError):
    """The alert target is configured wrong (named variable)."""


@dataclass(frozen=True)
class RunFailure:
    """A failed run, as an alert describes it."""

    job: str
    run_id: str
    partition: str | None
    failed_steps: tuple[str, ...]
    error: str
    run_url: str | None = None


def alert_provider(env: Mapping[str, str] | None = None) -> WebhookProvider | None:
    """The webhook the alerts go to, None when ``TESSERA_OPS_WEBHOOK_URL`` is not set.

    A URL without ``TESSERA_OPS_WEBHOOK_SECRET`` is refused: an unsigned alert could be forged
    by anyone who learns the receiver's address."""
    env = os.environ if env is None else env
    url = (env.get(URL_VAR) or "").strip()
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        raise OpsAlertError(f"{URL_VAR} must be an http(s) URL, got {url[:40]!r}")
    secret = clean_secret(env.get(SECRET_VAR))
    if not secret:
        raise OpsAlertError(f"{URL_VAR} is set but {SECRET_VAR} is not: alerts are signed")
    return WebhookProvider(url, secret, timeout_s=10.0)


def _secrets(env: Mapping[str, str]) -> list[str]:
    names = [*SECRET_VARS.values(), SECRET_VAR, "TESSERA_REVIEW_SECRET"]
    return [value for name in names if (value := clean_secret(env.get(name)))]


def alert_message(failure: RunFailure, env: Mapping[str, str] | None = None) -> Message:
    """The failure as one webhook message (key ``ops:run_failure:<run id>``)."""
    env = os.environ if env is None else env
    error = redact(failure.error, _secrets(env))
    if len(error) > ERROR_CHARS:
        error = error[:ERROR_CHARS] + " ..."
    what = f"{failure.job} failed" + (f" for {failure.partition}" if failure.partition else "")
    steps = ", ".join(failure.failed_steps) or "no step started"
    return Message(
        key=f"ops:run_failure:{failure.run_id}",
        campaign_id="ops",
        customer_id="ops",
        channel="webhook",
        address="ops",
        template_id="run_failure",
        as_of_date=failure.partition or "",
        data={
            "summary": f"{what}: {steps}",
            "job": failure.job,
            "run_id": failure.run_id,
            "partition": failure.partition,
            "failed_steps": list(failure.failed_steps),
            "error": error,
            "run_url": failure.run_url,
        },
    )


def send_alert(
    failure: RunFailure,
    provider: WebhookProvider,
    env: Mapping[str, str] | None = None,
) -> Message:
    """Post the alert (raises the provider's TransientError / PermanentError); returns it."""
    message = alert_message(failure, env)
    provider.send_batch([message])
    return message
