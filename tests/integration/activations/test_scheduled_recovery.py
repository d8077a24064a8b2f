"""With SendGrid scheduling (in_flight_policy 'schedule'), an in-flight batch at a crash is
recovered exactly once: its scheduled batch is cancelled and its messages are sent again."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from tessera.activations import ledger
from tessera.activations.errors import ProviderConfigError
from tessera.activations.providers.base import messages_from_frame
from tessera.activations.providers.sendgrid_email import SendGridProvider
from tessera.activations.sender import RetryPolicy, send_messages
from tessera.activations.sink import CANCEL_BEFORE_S, MAX_HELD_BATCHES

FAST = RetryPolicy(base_delay_s=0.01, max_attempts=4)
AHEAD_S = 20 * 60


def _provider(sink, tmp_path, **kw) -> SendGridProvider:
    # No sink_url: like live SendGrid, it cannot be asked what it received.
    return SendGridProvider(
        "SG.local-test-key.abcdefghijkl",
        "news@shop.example",
        host=sink.url,
        timeout_s=5.0,
        send_ahead_s=AHEAD_S,
        journal_path=tmp_path / "outbox" / "sendgrid_scheduled_batches.jsonl",
        **kw,
    )


def _crash_after_accepted(con, provider, msgs: pd.DataFrame, batches: int) -> None:
    """A run that marked its window 'sending', had it accepted, and died before recording."""
    ledger.ensure_schema(con)
    ledger.register(con, msgs)
    chunks = [msgs.iloc[i::batches] for i in range(batches)]
    ledger.mark_sending(
        con,
        pd.DataFrame(
            [(k, f"b{i}") for i, c in enumerate(chunks) for k in c.message_key],
            columns=["message_key", "batch_id"],
        ),
    )
    for chunk in chunks:
        provider.send_batch(messages_from_frame(chunk))


def _delivered(sink) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in sink.received():
        counts[r["message_key"]] = counts.get(r["message_key"], 0) + 1
    return counts


def test_crash_after_an_accepted_scheduled_batch_resends_exactly_once(
    sink, messages_factory, tmp_path
) -> None:
    msgs = messages_factory(300)
    con = duckdb.connect()
    _crash_after_accepted(con, _provider(sink, tmp_path), msgs, batches=3)
    report = send_messages(
        con, msgs, {"sendgrid": _provider(sink, tmp_path)}, FAST, in_flight_policy="schedule"
    )
    assert report.reconciled_resend == 300 and report.held_unknown == 0 and report.sent == 300
    assert _delivered(sink) == dict.fromkeys(msgs.message_key, 1)
    assert (ledger.statuses(con, msgs.message_key).status == "sent").all()
    # every message that will leave is scheduled ahead under a batch id
    assert all(r["batch_id"] and r["send_at"] for r in sink.received())


def test_without_scheduling_the_same_crash_is_held_as_unknown(sink, messages_factory) -> None:
    plain = SendGridProvider("SG.local-test-key.abcdefghijkl", "news@shop.example", host=sink.url)
    msgs = messages_factory(50)
    con = duckdb.connect()
    _crash_after_accepted(con, plain, msgs, batches=1)
    report = send_messages(con, msgs, {"sendgrid": plain}, FAST, in_flight_policy="hold")
    assert report.held_unknown == 50 and report.sent == 0
    assert _delivered(sink) == dict.fromkeys(msgs.message_key, 1)


def test_more_in_flight_batches_than_sendgrid_cancels_at_once_stay_unknown(
    sink, messages_factory, tmp_path
) -> None:
    msgs = messages_factory(12 * 5)
    con = duckdb.connect()
    _crash_after_accepted(con, _provider(sink, tmp_path), msgs, batches=12)
    report = send_messages(
        con, msgs, {"sendgrid": _provider(sink, tmp_path)}, FAST, in_flight_policy="schedule"
    )
    # SendGrid pauses or cancels at most 10 batches at a time: two batches cannot be recovered
    assert report.reconciled_resend == MAX_HELD_BATCHES * 5 and report.held_unknown == 2 * 5
    assert set(_delivered(sink).values()) == {1} and len(_delivered(sink)) == len(msgs)


def test_the_sink_refuses_to_cancel_within_10_minutes_of_send_at(sink, messages_factory) -> None:
    state = sink.server.state
    batch_id = state.create_batch()
    state.store(
        [
            {
                "message_key": "k1",
                "channel": "email",
                "batch_id": batch_id,
                "send_at": 1_000_000 + CANCEL_BEFORE_S,
            }
        ]
    )
    assert "10 minutes" in state.set_batch_status(batch_id, "cancel", now=1_000_001)
    assert state.set_batch_status(batch_id, "cancel", now=1_000_000 - 1) is None
    assert state.is_cancelled(batch_id)


def test_scheduling_too_close_or_too_far_ahead_is_a_configuration_error(sink, tmp_path) -> None:
    for ahead in (CANCEL_BEFORE_S, 73 * 3600):
        with pytest.raises(ProviderConfigError):
            SendGridProvider(
                "SG.k.abcdefghijkl",
                "news@shop.example",
                host=sink.url,
                send_ahead_s=ahead,
                journal_path=tmp_path / "j.jsonl",
            )


def test_ambiguous_timeouts_cancel_the_scheduled_batch_and_resend_it_once(
    sink, messages_factory, tmp_path
) -> None:
    from tessera.activations.sink import FaultPlan

    # Half the requests are stored but answered after the client gave up.
    sink.set_faults(FaultPlan(rate=0.5, kinds=("slow",), seed=5, slow_s=0.5))
    msgs = messages_factory(400, campaigns=4)
    con = duckdb.connect()
    provider = SendGridProvider(
        "SG.local-test-key.abcdefghijkl",
        "news@shop.example",
        host=sink.url,
        timeout_s=0.2,
        send_ahead_s=AHEAD_S,
        journal_path=tmp_path / "j.jsonl",
    )
    report = send_messages(
        con, msgs, {"sendgrid": provider}, RetryPolicy(base_delay_s=0.01, max_attempts=10)
    )
    sink.set_faults(None)
    assert report.failed == 0 and report.failed_retryable == 0
    assert _delivered(sink) == dict.fromkeys(msgs.message_key, 1)
    slow = [line for line in (sink.folder / "requests.jsonl").read_text().splitlines()]
    assert any('"slow"' in line for line in slow)
