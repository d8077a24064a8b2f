"""Sending a reviewed day exactly once: approval, daily ceilings, send-time checks, the ledger."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from tessera.activations import ledger
from tessera.activations.approval import require_approval, require_not_held
from tessera.activations.ceilings import DailyCeiling, channel_ceilings, daily_history, local_day
from tessera.activations.errors import SendBlockedError
from tessera.activations.providers.base import Provider
from tessera.activations.review import reviewed_messages, write_suppressions
from tessera.activations.sender import SendReport, send_messages
from tessera.activations.settings import SendSettings
from tessera.activations.suppression_sources import SuppressionSources
from tessera.activations.suppressions import SendTimeCheck, already_contacted

log = logging.getLogger(__name__)

#: A file in the data folder that pauses sending between batches (a kill switch mid-run).
PAUSE_FILE = "SENDS_PAUSED"
#: Ledger statuses a run does not send again (``failed`` too, unless retried on request).
_SETTLED = frozenset({"sent", "sending", "unknown", "suppressed"})


@dataclass(frozen=True)
class Delivery:
    """What one delivery run of a day did, and where the day's ledger stands."""

    report: SendReport
    #: The day's ledger per channel and status (ledger.partition_summary).
    summary: pd.DataFrame
    #: The day's messages that are failed or unknown, with the provider's answer.
    failed: pd.DataFrame
    #: How often the suppression list was read again before a window of requests.
    suppression_checks: int

    @property
    def messages(self) -> int:
        return int(self.summary["messages"].sum()) if not self.summary.empty else 0


def deliver_day(
    con: duckdb.DuckDBPyConnection,
    day: dt.date,
    settings: SendSettings,
    *,
    landing_dir: Path,
    outbox_dir: Path,
    pause_file: Path,
    retry_failed: bool = False,
    providers: Mapping[str, Provider] | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Delivery:
    """Send ``day``'s reviewed messages that the ledger has not settled, exactly once.

    Refuses (ActivationError, nothing sent) under the kill switch, for a date on hold, without a
    matching approval (unless ``auto_send``), when the plan would pass a daily ceiling, and when a suppression
    source cannot be read. Right before each window of requests the suppression list is read
    again and the ledger is asked whether the address already got a message that day; such
    messages end ``suppressed`` with the reason. While ``pause_file`` exists no new window
    starts. Failed messages do not raise: they are in ``Delivery.failed``.
    """
    if settings.kill_switch:
        raise SendBlockedError(
            "Sending is disabled by the kill switch (TESSERA_SENDS_DISABLED); nothing was sent."
        )
    messages = reviewed_messages(con, day)
    require_not_held(con, day)  # a hold stops unattended (auto_send) dates too
    if not settings.auto_send:
        require_approval(con, day, messages)
    ledger.ensure_schema(con)
    state = ledger.statuses(con, messages["message_key"])
    done = _SETTLED if retry_failed else _SETTLED | {"failed"}
    settled = set(state.loc[state["status"].isin(done), "message_key"])
    planned = messages[~messages["message_key"].isin(settled)].groupby("channel").size().to_dict()
    today = local_day(now(), settings.timezone)
    ceiling = DailyCeiling(
        con,
        settings.timezone,
        channel_ceilings(
            sorted(set(messages["channel"])),
            daily_history(con, today, settings.timezone),
            settings.volume_ceiling_factor,
            settings.volume_ceiling_floor,
            settings.explicit_ceilings(),
        ),
    )
    ceiling(planned)  # the whole plan first: refuse before anything leaves
    sources = SuppressionSources(con, landing_dir)
    write_suppressions(con, sources())
    if providers is None:
        providers = settings.build_providers(outbox_dir)
    if settings.live:
        settings.require(providers, set(messages["provider"].unique()))
    log.info("sending %d messages for %s via %s", len(messages), day, settings.target_description())
    recheck = SendTimeCheck(sources.for_check, lambda window: already_contacted(con, window))
    report = send_messages(
        con,
        messages,
        providers,
        settings.retry_policy(),
        workers=settings.workers,
        in_flight_policy=settings.in_flight_policy,
        retry_failed=retry_failed,
        should_stop=Path(pause_file).exists,
        recheck=recheck,
        ceiling=ceiling,
    )
    failed = con.execute(
        "select message_key, channel, customer_id, status, response_code, error "
        "from activations.deliveries "
        "where as_of_date = $d and status in ('failed', 'unknown') order by message_key",
        {"d": day},
    ).df()
    return Delivery(
        report=report,
        summary=ledger.partition_summary(con, day),
        failed=failed,
        suppression_checks=recheck.reads,
    )
