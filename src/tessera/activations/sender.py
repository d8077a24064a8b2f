"""Exactly-once delivery: ledger first, batched provider calls, retries, reconciliation."""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from tessera.activations import ledger
from tessera.activations.errors import SendBlockedError
from tessera.activations.providers.base import (
    Message,
    PermanentError,
    Provider,
    TransientError,
    messages_from_frame,
)
from tessera.activations.suppressions import reasons_by_key

log = logging.getLogger(__name__)

#: What to do with keys left 'sending' by a dead process when the provider cannot say whether
#: it accepted them: 'hold' marks them 'unknown' (at most once; a person decides), 'resend'
#: sends them again (at least once), 'schedule' (SendGrid) schedules every request ahead under
#: a batch of its own so that an unknown one is cancelled and sent again (exactly once while
#: the cancel is still allowed; otherwise like 'hold').
IN_FLIGHT_POLICIES = ("hold", "resend", "schedule")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; 429s wait as the provider says and do not count."""

    max_attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_rate_limit_wait_s: float = 300.0
    seed: int = 0

    def backoff(self, failures: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** (failures - 1)))


class RateGate:
    """A per-provider 'not before' time shared by all workers, so a 429 pauses every sender."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._not_before = 0.0
        self._clock = clock

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + seconds)

    def wait(self, sleep: Callable[[float], None]) -> None:
        while (delay := self._not_before - self._clock()) > 0:
            sleep(delay)


@dataclass
class BatchOutcome:
    sent: dict[str, str | None] = field(default_factory=dict)
    #: key -> (error, retryable, response code, excerpt)
    failed: dict[str, tuple[str, bool, int | None, str]] = field(default_factory=dict)
    reconciled: set[str] = field(default_factory=set)
    http_calls: int = 0
    attempts: list[dict] = field(default_factory=list)


def deliver_batch(
    provider: Provider,
    batch: Sequence[Message],
    batch_id: str,
    policy: RetryPolicy,
    gate: RateGate,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchOutcome:
    """Send one batch until every message is sent or has a final failure."""
    rng = random.Random(f"{policy.seed}|{batch_id}")
    out = BatchOutcome()
    remaining = list(batch)
    failures = 0
    rate_waited = 0.0
    while remaining:
        gate.wait(sleep)
        out.http_calls += 1
        started = time.time()
        row = {
            "batch_id": batch_id,
            "attempt": out.http_calls,
            "provider": provider.name,
            "as_of_date": remaining[0].as_of_date,
            "message_count": len(remaining),
            "started_at": pd.Timestamp(started, unit="s"),
            "response_code": None,
            "response_excerpt": None,
            "retry_after_s": None,
        }
        try:
            ids = provider.send_batch(remaining)
        except PermanentError as exc:
            out.attempts.append(
                {
                    **row,
                    "finished_at": pd.Timestamp.now(),
                    "outcome": "rejected",
                    "response_code": exc.status_code,
                    "response_excerpt": exc.excerpt,
                }
            )
            named = {k: v for k, v in exc.per_message.items() if k in {m.key for m in remaining}}
            if named and len(named) < len(remaining):
                for key, reason in named.items():
                    out.failed[key] = (reason, False, exc.status_code, exc.excerpt)
                remaining = [m for m in remaining if m.key not in named]
                continue  # the rest of the request was fine: resend it without the bad rows
            for m in remaining:
                out.failed[m.key] = (
                    named.get(m.key, str(exc)),
                    False,
                    exc.status_code,
                    exc.excerpt,
                )
            break
        except TransientError as exc:
            out.attempts.append(
                {
                    **row,
                    "finished_at": pd.Timestamp.now(),
                    "outcome": "transient",
                    "response_code": exc.status_code,
                    "response_excerpt": exc.excerpt,
                    "retry_after_s": exc.retry_after,
                }
            )
            if exc.ambiguous:
                # The provider may have accepted the request: ask before resending.
                accepted = provider.reconcile([m.key for m in remaining])
                if accepted:
                    out.reconciled |= accepted
                    out.sent.update({k: None for k in accepted})
                    remaining = [m for m in remaining if m.key not in accepted]
                    if not remaining:
                        break
            if exc.status_code == 429:
                delay = exc.retry_after if exc.retry_after is not None else policy.backoff(1, rng)
                delay += rng.uniform(0, policy.base_delay_s)
                rate_waited += delay
                if rate_waited > policy.max_rate_limit_wait_s:
                    for m in remaining:
                        out.failed[m.key] = (
                            f"rate limited for {rate_waited:.0f}s",
                            True,
                            429,
                            exc.excerpt,
                        )
                    break
                gate.hold(delay)
            else:
                failures += 1
                if failures >= policy.max_attempts:
                    for m in remaining:
                        out.failed[m.key] = (
                            f"gave up after {failures} attempts: {exc}",
                            True,
                            exc.status_code,
                            exc.excerpt,
                        )
                    break
                delay = max(policy.backoff(failures, rng), exc.retry_after or 0.0)
                sleep(delay)
            continue
        out.attempts.append({**row, "finished_at": pd.Timestamp.now(), "outcome": "accepted"})
        out.sent.update(ids)
        remaining = []
    return out


@dataclass
class SendReport:
    """What one send run did."""

    registered: int = 0
    already_sent: int = 0
    reconciled_sent: int = 0
    reconciled_resend: int = 0
    held_unknown: int = 0
    sent: int = 0
    failed: int = 0
    failed_retryable: int = 0
    requests: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # key, channel, reason
    #: Messages the send-time check held back (final status 'suppressed'): key, channel, reason.
    suppressed: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def messages_per_second(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def _batch_id(provider: str, batch: Sequence[Message]) -> str:
    digest = hashlib.sha256("|".join(m.key for m in batch).encode()).hexdigest()[:12]
    return f"{provider}-{digest}-{time.time_ns() % 10**10}"


def _reconcile_in_flight(
    con: duckdb.DuckDBPyConnection,
    rows: pd.DataFrame,
    providers: Mapping[str, Provider],
    in_flight_policy: str,
    report: SendReport,
) -> None:
    """Settle keys a dead process left 'sending': sent, to send again, or unknown (held)."""
    for provider_name, group in rows.groupby("provider"):
        keys = list(group["message_key"])
        provider = providers.get(provider_name)
        accepted = provider.reconcile(keys) if provider else None
        recover = getattr(provider, "recover_in_flight", None)
        if accepted is not None:  # the provider can tell (the local sink)
            status = {k: "sent" if k in accepted else "pending" for k in keys}
        elif in_flight_policy == "schedule" and callable(recover):
            # Cancelled scheduled batches (and keys never scheduled) are known not sent.
            accepted, not_sent = recover(keys)
            status = {
                k: "sent" if k in accepted else "pending" if k in not_sent else "unknown"
                for k in keys
            }
        elif in_flight_policy == "resend":
            status = dict.fromkeys(keys, "pending")
        else:  # hold, and schedule for providers that cannot schedule
            status = dict.fromkeys(keys, "unknown")
        out = pd.DataFrame({"message_key": keys})
        out["status"] = [status[k] for k in keys]
        out["error"] = [
            "in flight when a previous run died; provider cannot confirm "
            f"(policy: {in_flight_policy})"
            if status[k] == "unknown"
            else None
            for k in keys
        ]
        report.held_unknown += int((out["status"] == "unknown").sum())
        report.reconciled_sent += int((out["status"] == "sent").sum())
        report.reconciled_resend += int((out["status"] == "pending").sum())
        out["provider_message_id"] = None
        out["response_code"] = None
        out["response_excerpt"] = ["reconciled after interrupted run"] * len(out)
        out["is_retryable"] = False
        out["attempts_delta"] = 0
        ledger.record_outcomes(con, out)
    return None


def send_messages(
    con: duckdb.DuckDBPyConnection,
    messages: pd.DataFrame,
    providers: Mapping[str, Provider],
    policy: RetryPolicy | None = None,
    workers: int = 8,
    window_messages: int = 8000,
    window_requests: int = 512,
    in_flight_policy: str = "hold",
    retry_failed: bool = False,
    should_stop: Callable[[], bool] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    recheck: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    ceiling: Callable[[Mapping[str, int]], None] | None = None,
) -> SendReport:
    """Send every message in ``messages`` (outbound rows) that the ledger has not sent.

    Per window of batches: mark keys 'sending' (committed), call the providers concurrently,
    record outcomes. Keys found 'sending' at start were in flight when a process died: they are
    reconciled with the provider first. Permanent failures are only resent with
    ``retry_failed``; retryable ones (retries exhausted) are resent by every run.

    ``recheck`` is called with each window's messages (message_key, channel, address,
    customer_id, as_of_date) right before they are marked in flight and returns the ones that
    must not leave (message_key, reason, source_event): they end 'suppressed' with the reason and
    are never sent. ``ceiling`` is called with the window's count per channel and raises
    SendBlockedError when the day's ceiling would be passed (the window stays pending).
    """
    if in_flight_policy not in IN_FLIGHT_POLICIES:
        # Anything but an exact 'hold' used to mean resend: refuse instead of guessing.
        raise SendBlockedError(
            f"in_flight_policy={in_flight_policy!r} is not allowed; use exactly one of "
            f"{', '.join(IN_FLIGHT_POLICIES)}"
        )
    policy = policy or RetryPolicy()
    report = SendReport()
    started = time.perf_counter()
    ledger.ensure_schema(con)
    # A repeated row must never become a second request (identical rows collapse; rows that
    # share a key but differ stop the run before anything is sent).
    try:
        messages = ledger.unique_messages(messages)
    except ledger.DuplicateMessageError as exc:
        raise SendBlockedError(str(exc)) from None
    report.registered = ledger.register(con, messages)
    state = ledger.statuses(con, messages["message_key"])
    report.already_sent = int((state["status"] == "sent").sum())
    in_flight = state[state["status"] == "sending"]
    if not in_flight.empty:
        _reconcile_in_flight(con, in_flight, providers, in_flight_policy, report)
        state = ledger.statuses(con, messages["message_key"])
    todo_mask = (state["status"] == "pending") | (
        (state["status"] == "failed") & (state["is_retryable"].fillna(False) | retry_failed)
    )
    todo_keys = set(state.loc[todo_mask, "message_key"])
    todo = messages[messages["message_key"].isin(todo_keys)]
    gates = {name: RateGate() for name in providers}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tessera-send") as pool:
        for provider_name, group in todo.groupby("provider", sort=True):
            provider = providers.get(provider_name)
            if provider is None:
                raise SendBlockedError(
                    f"no provider configured for '{provider_name}' ({len(group)} messages); "
                    "configure it or change the channel's provider"
                )
            batches = provider.plan_batches(messages_from_frame(group))
            window: list[list[Message]] = []
            in_window = 0
            for batch in batches + [None]:  # type: ignore[list-item]
                if batch is not None:
                    window.append(batch)
                    in_window += len(batch)
                    # Bounded by messages (what may be in flight at a crash), and by requests
                    # only loosely: a one-message-per-request provider (SMS) would otherwise
                    # pay the per-window checks and ledger writes every few dozen messages.
                    if in_window < window_messages and len(window) < window_requests:
                        continue
                if not window:
                    continue
                in_window = 0
                if should_stop and should_stop():
                    raise SendBlockedError(
                        f"kill switch engaged: stopped after {report.sent} messages; "
                        "unsent messages stay pending for the next run"
                    )
                if recheck is not None:
                    window = _suppress_at_send_time(con, window, recheck, report)
                if ceiling is not None and window:
                    per_channel: dict[str, int] = {}
                    for m in (m for b in window for m in b):
                        per_channel[m.channel] = per_channel.get(m.channel, 0) + 1
                    ceiling(per_channel)
                if not window:
                    continue
                _send_window(
                    con, provider, window, policy, gates[provider_name], pool, sleep, report
                )
                window = []
    for provider in providers.values():
        provider.flush()
    report.seconds = time.perf_counter() - started
    return report


def _suppress_at_send_time(
    con: duckdb.DuckDBPyConnection,
    window: list[list[Message]],
    recheck: Callable[[pd.DataFrame], pd.DataFrame],
    report: SendReport,
) -> list[list[Message]]:
    """Drop (and record as 'suppressed') what the send-time check refuses; keep the rest."""
    frame = pd.DataFrame(
        [(m.key, m.channel, m.address, m.customer_id, m.as_of_date) for b in window for m in b],
        columns=["message_key", "channel", "address", "customer_id", "as_of_date"],
    )
    hits = recheck(frame)
    if hits is None or hits.empty:
        return window
    reasons = reasons_by_key(hits)
    channel_of = dict(zip(frame["message_key"], frame["channel"], strict=True))
    out = pd.DataFrame({"message_key": list(reasons), "error": list(reasons.values())})
    out["status"] = "suppressed"
    out["provider_message_id"] = None
    out["response_code"] = None
    out["response_excerpt"] = "suppressed at send time"
    out["is_retryable"] = False
    out["attempts_delta"] = 0
    ledger.record_outcomes(con, out)
    report.suppressed += [(k, channel_of.get(k, ""), r) for k, r in reasons.items()]
    kept = [[m for m in b if m.key not in reasons] for b in window]
    return [b for b in kept if b]


def _send_window(
    con: duckdb.DuckDBPyConnection,
    provider: Provider,
    window: list[list[Message]],
    policy: RetryPolicy,
    gate: RateGate,
    pool: ThreadPoolExecutor,
    sleep: Callable[[float], None],
    report: SendReport,
) -> None:
    ids = [_batch_id(provider.name, b) for b in window]
    ledger.mark_sending(
        con,
        pd.DataFrame(
            [(m.key, bid) for bid, b in zip(ids, window, strict=True) for m in b],
            columns=["message_key", "batch_id"],
        ),
    )
    futures = [
        pool.submit(deliver_batch, provider, b, bid, policy, gate, sleep)
        for bid, b in zip(ids, window, strict=True)
    ]
    rows: list[tuple] = []
    attempts: list[dict] = []
    channel_of = {m.key: m.channel for b in window for m in b}
    for fut in futures:
        res = fut.result()
        report.requests += res.http_calls
        attempts += res.attempts
        extra = max(res.http_calls - 1, 0)
        for key, pid in res.sent.items():
            excerpt = "reconciled: accepted before timeout" if key in res.reconciled else None
            rows.append((key, "sent", pid, 202, excerpt, None, False, extra))
        for key, (error, retryable, code, excerpt) in res.failed.items():
            rows.append((key, "failed", None, code, excerpt, error, retryable, extra))
            report.failures.append((key, channel_of[key], error))
            if retryable:
                report.failed_retryable += 1
            else:
                report.failed += 1
        report.sent += len(res.sent)
    ledger.record_outcomes(
        con,
        pd.DataFrame(
            rows,
            columns=[
                "message_key",
                "status",
                "provider_message_id",
                "response_code",
                "response_excerpt",
                "error",
                "is_retryable",
                "attempts_delta",
            ],
        ),
    )
    ledger.record_attempts(con, attempts)


def check_volume(
    planned: Mapping[str, int],
    history: pd.DataFrame,
    factor: float,
    floor: int,
    explicit: Mapping[str, int] | None = None,
) -> None:
    """Raise SendBlockedError when a channel would send more than its ceiling in one go.

    The ceiling per channel is activations.ceilings.channel_ceilings (explicit maximum, else
    ``max(floor, factor x median daily sent over the history)``). `deliveries` checks the
    calendar day's ledger count with activations.ceilings.DailyCeiling; this is the same rule
    for a plan alone.
    """
    from tessera.activations.ceilings import channel_ceilings

    ceilings = channel_ceilings(sorted(planned), history, factor, floor, explicit)
    problems = [
        f"{channel}: {n:,} planned > ceiling {ceilings[channel]:,}"
        for channel, n in planned.items()
        if n > ceilings[channel]
    ]
    if problems:
        raise SendBlockedError(
            "daily volume ceiling exceeded (" + "; ".join(problems) + "). Check the matrix and "
            "catalog; raise the ceiling in the activation settings if this volume is intended."
        )
