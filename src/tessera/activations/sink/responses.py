"""Response simulation: the deterministic SendGrid-format events a received message leads to."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
from dataclasses import dataclass


def _unit(*parts: object) -> float:
    """A deterministic uniform number in [0, 1) from the parts."""
    return _unit_cached("|".join(map(str, parts)))


@dataclass(frozen=True)
class EventRates:
    """Response model: base rates scaled by customer and campaign factors (both in [0, 1))."""

    bounce: float = 0.015
    open_base: float = 0.20
    open_customer: float = 0.35
    click_base: float = 0.15
    click_campaign: float = 0.25
    unsubscribe: float = 0.004
    spam_report: float = 0.0005
    conversion_base: float = 0.01
    conversion_customer: float = 0.05
    conversion_campaign: float = 1.5
    click_conversion_boost: float = 3.0


@functools.lru_cache(maxsize=4096)
def _day_start(text: str) -> float | None:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return None


@functools.lru_cache(maxsize=200_000)
def _unit_cached(text: str) -> float:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def simulate_events(msg: dict, seed: int, rates: EventRates = EventRates()) -> list[dict]:
    """SendGrid-format events for one received message, deterministic in (seed, key)."""
    key, cust, camp, channel = (
        msg["message_key"],
        msg["customer_id"],
        msg["campaign_id"],
        msg["channel"],
    )
    day = _day_start(str(msg.get("as_of_date") or "")[:10])
    if day is None:
        return []
    duration = max(1, int(msg.get("duration_days") or 7))
    u_c, u_k = _unit(seed, "customer", cust), _unit(seed, "campaign", camp)
    digest = hashlib.sha256(f"{seed}|{key}".encode()).digest()
    # Ten independent uniforms from one hash (the sink must keep up with 20k messages/s).
    r = [int.from_bytes(digest[3 * i : 3 * i + 3], "big") / 2**24 for i in range(10)]
    base = day + 9 * 3600 + r[0] * 3 * 3600
    common = {
        "email": msg.get("address", ""),
        "message_key": key,
        "campaign_id": camp,
        "customer_id": cust,
        "as_of_date": msg["as_of_date"][:10],
        "channel": channel,
        "sg_message_id": f"{msg.get('provider_message_id', key)}.tessera-sink",
        "category": ["tessera", camp],
    }

    def event(name: str, at: float, **extra: object) -> dict:
        eid = base64.urlsafe_b64encode(
            hashlib.sha256(f"{key}|{name}".encode()).digest()[:15]
        ).decode()
        return {**common, "event": name, "timestamp": int(at), "sg_event_id": eid, **extra}

    if _unit(seed, "bounce", cust, channel) < rates.bounce:
        return [event("bounce", base + 30, reason="550 5.1.1 mailbox unavailable", type="bounce")]
    out = [event("delivered", base + 5 + r[1] * 120)]
    opened = channel in ("email", "webhook") and r[2] < rates.open_base + rates.open_customer * u_c
    t_open = base + 600 + r[3] * 36 * 3600
    if opened:
        out.append(event("open", t_open))
    click_p = rates.click_base + rates.click_campaign * u_k
    clicked = (opened or channel == "sms") and r[4] < click_p * (1.0 if opened else 0.4)
    t_click = t_open + 60 + r[5] * 1800
    if clicked:
        out.append(event("click", t_click, url="https://shop.example/offer"))
    if r[6] < rates.unsubscribe * (3 if channel == "sms" else 1):
        out.append(event("unsubscribe", t_open + 120))
    elif channel == "email" and r[7] < rates.spam_report:
        out.append(event("spamreport", t_open + 180))
    p_conv = (rates.conversion_base + rates.conversion_customer * u_c) * (
        0.5 + rates.conversion_campaign * u_k
    )
    if clicked:
        p_conv *= rates.click_conversion_boost
    if r[8] < min(p_conv, 0.9):
        at = base + 3600 + r[9] * (duration * 86400 - 12 * 3600)
        revenue = round(15 + 185 * _unit(seed, "revenue", key), 2)
        out.append(event("conversion", at, revenue=revenue))
    return out
