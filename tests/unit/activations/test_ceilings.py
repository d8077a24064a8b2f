"""Daily ceilings count the ledger per channel and calendar day in the configured timezone."""

import datetime as dt

import duckdb
import pytest

from tessera.activations import ledger
from tessera.activations.ceilings import DailyCeiling, channel_ceilings, daily_history, out_on_day
from tessera.activations.errors import SendBlockedError


def _ledger(messages_factory, left_at_utc, status="sent", channel="email"):
    con = duckdb.connect()
    ledger.ensure_schema(con)
    msgs = messages_factory(len(left_at_utc), channel=channel)
    ledger.register(con, msgs)
    for key, at in zip(msgs["message_key"], left_at_utc, strict=True):
        con.execute(
            "update activations.deliveries set status = $s, sent_at = $t, last_attempt_at = $t "
            "where message_key = $k",
            {"s": status, "t": at, "k": key},
        )
    return con


def test_a_calendar_day_is_the_configured_timezones_day(messages_factory):
    # 22:30 UTC is still 1 March in Berlin (UTC+1); 23:30 UTC is already 2 March there.
    times = [dt.datetime(2025, 3, 1, 22, 30), dt.datetime(2025, 3, 1, 23, 30)]
    con = _ledger(messages_factory, times)
    assert out_on_day(con, dt.date(2025, 3, 1), "Europe/Berlin") == {"email": 1}
    assert out_on_day(con, dt.date(2025, 3, 2), "Europe/Berlin") == {"email": 1}
    assert out_on_day(con, dt.date(2025, 3, 1), "UTC") == {"email": 2}


@pytest.mark.parametrize("status", ["sent", "sending", "unknown"])
def test_sent_and_possibly_out_count_against_the_ceiling(messages_factory, status):
    now = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
    con = _ledger(messages_factory, [dt.datetime(2025, 3, 1, 6, 0)] * 50, status=status)
    check = DailyCeiling(con, "UTC", {"email": 60}, now=lambda: now)
    check({"email": 10})
    with pytest.raises(
        SendBlockedError,
        match=r"email: 50 sent or in flight on 2025-03-01 \(UTC\) \+ 11 planned > ceiling 60",
    ):
        check({"email": 11})
    check({"sms": 1000})  # another channel has its own budget (none configured here)


def test_failed_and_suppressed_do_not_count(messages_factory):
    now = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
    con = _ledger(messages_factory, [dt.datetime(2025, 3, 1, 6, 0)] * 5, status="suppressed")
    DailyCeiling(con, "UTC", {"email": 5}, now=lambda: now)({"email": 5})


def test_the_usual_volume_comes_from_past_calendar_days(messages_factory):
    times = [dt.datetime(2025, 2, d, 8) for d in (26, 27, 27, 28, 28, 28)]
    con = _ledger(messages_factory, times)
    history = daily_history(con, dt.date(2025, 3, 1), "UTC")
    assert sorted(history["sent"]) == [1, 2, 3]
    assert channel_ceilings(["email", "sms"], history, 3.0, 4, {"sms": 7}) == {"email": 6, "sms": 7}
