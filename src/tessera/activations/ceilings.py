"""Daily volume ceilings per channel and calendar day, counted from the delivery ledger.

A calendar day is the day in the configured timezone (TESSERA_TIMEZONE) on which messages
leave. Everything the ledger holds as sent or possibly out (sending, unknown) that day counts,
whatever the run, campaign date or campaign: a rerun, a second `deliveries` of another date or
a matrix rebuilt under another campaign all draw on the same budget.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd

from tessera.activations.errors import SendBlockedError
from tessera.activations.ledger import OUT_STATUSES, SCHEMA

#: When a message left (or last tried to): the ledger's timestamps are naive UTC.
_LEFT_AT = "coalesce(sent_at, last_attempt_at, first_attempt_at)"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def local_day(now: dt.datetime, timezone: str) -> dt.date:
    """The calendar day of ``now`` (aware, or naive UTC) in ``timezone``."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    return now.astimezone(ZoneInfo(timezone)).date()


def day_bounds_utc(day: dt.date, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of ``day`` in ``timezone`` as naive UTC (how the ledger stores time)."""
    tz = ZoneInfo(timezone)
    start = dt.datetime.combine(day, dt.time(), tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz)
    return (
        start.astimezone(dt.UTC).replace(tzinfo=None),
        end.astimezone(dt.UTC).replace(tzinfo=None),
    )


def out_on_day(con: duckdb.DuckDBPyConnection, day: dt.date, timezone: str) -> dict[str, int]:
    """Messages per channel sent or possibly out on calendar ``day``."""
    start, end = day_bounds_utc(day, timezone)
    statuses = ", ".join(f"'{s}'" for s in OUT_STATUSES)
    rows = con.execute(
        f"""
        select channel, count(*) from {SCHEMA}.deliveries
        where status in ({statuses}) and {_LEFT_AT} >= $start and {_LEFT_AT} < $end
        group by channel
        """,
        {"start": start, "end": end},
    ).fetchall()
    return {str(ch): int(n) for ch, n in rows}


def daily_history(
    con: duckdb.DuckDBPyConnection, day: dt.date, timezone: str, days: int = 28
) -> pd.DataFrame:
    """Sent messages per channel and calendar day over the ``days`` before ``day``."""
    start, _ = day_bounds_utc(day - dt.timedelta(days=days), timezone)
    end, _ = day_bounds_utc(day, timezone)
    frame = con.execute(
        f"""
        select channel, {_LEFT_AT} as left_at from {SCHEMA}.deliveries
        where status = 'sent' and {_LEFT_AT} >= $start and {_LEFT_AT} < $end
        """,
        {"start": start, "end": end},
    ).df()
    if frame.empty:
        return pd.DataFrame(columns=["channel", "day", "sent"])
    local = pd.to_datetime(frame["left_at"]).dt.tz_localize("UTC").dt.tz_convert(timezone)
    frame["day"] = local.dt.date
    return frame.groupby(["channel", "day"]).size().rename("sent").reset_index()


def channel_ceilings(
    channels: list[str],
    history: pd.DataFrame,
    factor: float,
    floor: int,
    explicit: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Per channel: the explicit maximum if configured, else max(floor, factor x median daily
    sent over the history)."""
    explicit = explicit or {}
    out = {}
    for channel in channels:
        if channel in explicit:
            out[channel] = int(explicit[channel])
            continue
        past = history.loc[history["channel"] == channel, "sent"] if not history.empty else []
        median = float(pd.Series(past).median()) if len(past) else 0.0
        out[channel] = max(floor, int(factor * median))
    return out


class DailyCeiling:
    """Checks planned sends against what the ledger says left today, per channel.

    Called once with the whole plan before anything is sent (a clear refusal, nothing leaves)
    and again before each window of requests (so concurrent or later runs cannot pass it).
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        timezone: str,
        ceilings: Mapping[str, int],
        now: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        ZoneInfo(timezone)  # an unknown timezone fails here, not mid-send
        self._con = con
        self._tz = timezone
        self._ceilings = dict(ceilings)
        self._now = now

    def __call__(self, planned: Mapping[str, int]) -> None:
        day = local_day(self._now(), self._tz)
        out = out_on_day(self._con, day, self._tz)
        problems = []
        for channel, n in sorted(planned.items()):
            ceiling = self._ceilings.get(channel)
            if ceiling is None or n <= 0:
                continue
            already = out.get(channel, 0)
            if already + n > ceiling:
                problems.append(
                    f"{channel}: {already:,} sent or in flight on {day} ({self._tz}) + {n:,} "
                    f"planned > ceiling {ceiling:,}"
                )
        if problems:
            raise SendBlockedError(
                "daily volume ceiling exceeded (" + "; ".join(problems) + "). Nothing more was "
                "sent; unsent messages stay pending. Check the matrix and catalog; raise the "
                "ceiling in the activation settings if this volume is intended."
            )
