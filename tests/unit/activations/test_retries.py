"""Retry semantics of one batch against a scripted fake provider (no network)."""

from tessera.activations.providers.base import (
    PermanentError,
    Provider,
    TransientError,
    messages_from_frame,
)
from tessera.activations.sender import RateGate, RetryPolicy, deliver_batch


class Scripted(Provider):
    name = "fake"
    max_batch = 1000

    def __init__(self, script, accepted_on_reconcile=None):
        self.script = list(script)
        self.calls = []
        self.accepted = accepted_on_reconcile

    def send_batch(self, batch):
        self.calls.append([m.key for m in batch])
        step = self.script.pop(0) if self.script else None
        if isinstance(step, Exception):
            raise step
        return {m.key: "id" for m in batch}

    def reconcile(self, keys):
        return None if self.accepted is None else set(keys) & self.accepted


def _run(provider, msgs, **policy):
    sleeps = []
    out = deliver_batch(
        provider, msgs, "b1", RetryPolicy(base_delay_s=0.01, **policy), RateGate(), sleeps.append
    )
    return out, sleeps


def test_429_waits_for_retry_after_and_does_not_count_as_a_failure(messages_factory):
    msgs = messages_from_frame(messages_factory(3))
    p = Scripted([TransientError("HTTP 429", 429, retry_after=2.0)] * 4)
    out, sleeps = _run(p, msgs, max_attempts=2)
    assert len(out.sent) == 3 and not out.failed and len(p.calls) == 5
    assert sum(sleeps) >= 8.0  # four waits of at least Retry-After


def test_5xx_is_retried_with_backoff_then_given_up_as_retryable(messages_factory):
    msgs = messages_from_frame(messages_factory(2))
    p = Scripted([TransientError("HTTP 503", 503)] * 10)
    out, sleeps = _run(p, msgs, max_attempts=3)
    assert len(p.calls) == 3 and len(sleeps) == 2
    assert all(retryable for _, retryable, _, _ in out.failed.values()) and len(out.failed) == 2


def test_validation_error_is_not_retried(messages_factory):
    msgs = messages_from_frame(messages_factory(2))
    p = Scripted([PermanentError("HTTP 400", 400, '{"errors":[]}')])
    out, sleeps = _run(p, msgs)
    assert len(p.calls) == 1 and not sleeps
    assert {k: v[1] for k, v in out.failed.items()} == {m.key: False for m in msgs}


def test_rejected_rows_named_by_the_provider_fail_alone_and_the_rest_is_resent(messages_factory):
    msgs = messages_from_frame(messages_factory(3))
    bad = msgs[1].key
    p = Scripted(
        [
            PermanentError(
                "HTTP 400", 400, per_message={bad: "personalizations.1.to.0.email: invalid"}
            )
        ]
    )
    out, _ = _run(p, msgs)
    assert set(out.failed) == {bad} and set(out.sent) == {msgs[0].key, msgs[2].key}
    assert p.calls[1] == [msgs[0].key, msgs[2].key]


def test_ambiguous_timeout_is_reconciled_instead_of_resent(messages_factory):
    msgs = messages_from_frame(messages_factory(3))
    p = Scripted(
        [TransientError("timeout", ambiguous=True)],
        accepted_on_reconcile={msgs[0].key, msgs[1].key},
    )
    out, _ = _run(p, msgs)
    assert set(out.sent) == {m.key for m in msgs}
    assert p.calls[1] == [msgs[2].key]  # only the one the provider did not get
