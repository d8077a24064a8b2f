"""Reconciliation never takes "not received" as final while a request may still be in flight."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from tessera.activations import ledger
from tessera.activations.providers.sendgrid_email import SendGridProvider
from tessera.activations.providers.twilio_sms import TwilioSmsProvider
from tessera.activations.providers.webhook import WebhookProvider
from tessera.activations.sender import RetryPolicy, send_messages
from tessera.activations.sink import FaultPlan

FAST = RetryPolicy(base_delay_s=0.01, max_attempts=6)


@pytest.mark.parametrize("timeout_s", [0.003, 0.01])
def test_client_timeout_shorter_than_sink_processing_sends_no_duplicate(
    sink, messages_factory, timeout_s
) -> None:
    # Every request takes 0.15 s to be stored: each client call times out, ambiguously.
    sink.set_faults(FaultPlan(processing_s=0.15))
    email = messages_factory(1200, campaigns=3)
    sms = messages_factory(8, channel="sms")
    hook = messages_factory(30, channel="webhook")
    msgs = pd.concat([email, sms, hook], ignore_index=True)
    providers = {
        "sendgrid": SendGridProvider(
            "SG.local-test-key.abcdefghijkl",
            "news@shop.example",
            host=sink.url,
            sink_url=sink.url,
            timeout_s=timeout_s,
        ),
        "twilio": TwilioSmsProvider(
            "AC" + "1" * 32,
            "tok-123456",
            "+15005550006",
            base_url=sink.url,
            status_callback_url=f"{sink.url}/status",  # carries the message key
            sink_url=sink.url,
            timeout_s=timeout_s,
        ),
        "webhook": WebhookProvider(
            f"{sink.url}/webhook/push", "whsec-1", timeout_s, sink_url=sink.url
        ),
    }
    con = duckdb.connect()
    report = send_messages(con, msgs, providers, FAST, workers=4)
    sink.set_faults(None)
    stats = sink.stats()
    assert stats["duplicates"] == 0
    assert stats["unique_keys"] == len(msgs)
    assert report.failed == 0 and report.failed_retryable == 0
    assert (ledger.statuses(con, msgs.message_key).status == "sent").all()
