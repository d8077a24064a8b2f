"""The campaign_responses table: the shop's monthly newsletter history before Tessera."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa

from tessera.demo.arrow import _concat, _iso, _take
from tessera.demo.customers import _Chunk
from tessera.demo.orders import _Orders
from tessera.demo.world import (
    _BOUNCE,
    _CLICK,
    _CONV,
    _DAY_S,
    _DELIVERED,
    _OPEN,
    _SPAM,
    _UNSUB,
    RESPONSE_EVENTS,
    _Calendar,
)


def _newsletter_sends(start: date, n_days: int) -> tuple[list[str], np.ndarray]:
    """Campaign ids and send times (days since start): first Tuesday of each month, 09:00 UTC."""
    ids, times = [], []
    month = date(start.year, start.month, 1)
    end = start + timedelta(days=n_days)
    while month < end:
        tuesday = month + timedelta(days=(1 - month.weekday()) % 7)
        t = (tuesday - start).days + 9 / 24
        if 0 <= t < n_days:
            ids.append(f"newsletter_{month.year}_{month.month:02d}")
            times.append(t)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return ids, np.array(times, dtype=np.float64)


def _simulate_responses(
    rng: np.random.Generator,
    c: _Chunk,
    o: _Orders,
    cal: _Calendar,
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Monthly newsletter to opted-in customers; opens and clicks follow engagement and fade
    around the latent dropout; bounces, unsubscribes and spam reports stop later sends."""
    ids, send_t = _newsletter_sends(cal.start, cal.n_days)
    n, m = len(c.signup), len(send_t)
    empty = np.zeros(0)
    if n == 0 or m == 0:
        return (
            ids,
            empty.astype(np.int64),
            empty.astype(np.int64),
            empty.astype(np.int8),
            empty,
            empty,
        )
    e = c.engagement[:, None]
    eligible = c.email_opt_in[:, None] & (c.signup[:, None] < send_t[None, :])
    before_dropout = c.dropout[:, None] - send_t[None, :]
    alive = np.select([before_dropout <= 0, before_dropout <= 56], [0.25, 0.5], 1.0)

    def draw() -> np.ndarray:
        return rng.random((n, m), dtype=np.float32)

    bounce = np.where(c.email_invalid[:, None], draw() < 0.95, draw() < 0.002)
    delivered = eligible & ~bounce
    opened = delivered & (draw() < e * alive)
    clicked = opened & (draw() < 0.05 + 0.2 * e)
    unsub = delivered & (draw() < 0.001 + 0.004 * (1 - e) + 0.006 * (before_dropout <= 0))
    spam = delivered & ~unsub & (draw() < 0.0004 + 0.001 * (1 - e))
    stop = eligible & (bounce | unsub | spam)
    first_stop = np.where(stop.any(axis=1), stop.argmax(axis=1), m)
    sent = eligible & (np.arange(m)[None, :] <= first_stop[:, None])

    deliver_t = send_t[None, :] + draw() * (40 / 1440)
    open_t = deliver_t + rng.exponential(0.3, (n, m))
    times = {
        _DELIVERED: deliver_t,
        _BOUNCE: deliver_t,
        _OPEN: open_t,
        _CLICK: open_t + rng.exponential(3 / 1440, (n, m)),
        _UNSUB: np.where(opened, open_t, deliver_t) + rng.exponential(2 / 1440, (n, m)),
        _SPAM: deliver_t + rng.exponential(1.0, (n, m)),
    }
    masks = {
        _DELIVERED: delivered,
        _BOUNCE: bounce & eligible,
        _OPEN: opened,
        _CLICK: clicked,
        _UNSUB: unsub,
        _SPAM: spam,
    }
    cust, month, event, t = [], [], [], []
    for code, mask in masks.items():
        ci, mi = np.nonzero(mask & sent)
        cust.append(ci)
        month.append(mi)
        event.append(np.full(len(ci), code, dtype=np.int8))
        t.append(times[code][ci, mi])
    revenue = [np.full(sum(len(x) for x in cust), np.nan)]

    # A click converts when the customer completed an order within three days after it.
    ci, mi, click_t = cust[3], month[3], t[3]
    done = o.status == 0
    oo = np.lexsort((o.t[done], o.owner[done]))
    o_owner, o_t, o_amount = o.owner[done][oo], o.t[done][oo], o.amount[done][oo]
    span = cal.n_days + 10.0
    idx = np.searchsorted(o_owner * span + o_t, ci * span + click_t, side="left")
    ok = idx < len(o_t)
    idx = np.minimum(idx, max(len(o_t) - 1, 0))
    if len(o_t):
        ok &= (o_owner[idx] == ci) & (o_t[idx] - click_t <= 3.0)
    else:
        ok[:] = False
    cust.append(ci[ok])
    month.append(mi[ok])
    event.append(np.full(ok.sum(), _CONV, dtype=np.int8))
    t.append(o_t[idx[ok]] if len(o_t) else np.zeros(0))
    revenue.append(o_amount[idx[ok]] if len(o_t) else np.zeros(0))

    cust_a, month_a = np.concatenate(cust), np.concatenate(month)
    event_a, t_a, rev_a = np.concatenate(event), np.concatenate(t), np.concatenate(revenue)
    keep = t_a < cal.n_days
    order = np.lexsort((event_a[keep], t_a[keep], cust_a[keep]))
    return (
        ids,
        cust_a[keep][order],
        month_a[keep][order],
        event_a[keep][order],
        t_a[keep][order],
        rev_a[keep][order],
    )


def _responses_table(
    rng: np.random.Generator,
    c: _Chunk,
    o: _Orders,
    cal: _Calendar,
    customer_ids: pa.Array,
    start_s: int,
) -> pa.Table:
    ids, r_cust, r_month, r_event, r_t, r_rev = _simulate_responses(rng, c, o, cal)
    campaign_ids = _take(ids, r_month)
    r_customer_ids = customer_ids.take(pa.array(r_cust))
    return pa.table(
        {
            "message_id": _concat(campaign_ids, "-", r_customer_ids),
            "customer_id": r_customer_ids,
            "campaign_id": campaign_ids,
            "channel": pa.array(np.full(len(r_cust), "email"), pa.string()),
            "event": _take(RESPONSE_EVENTS, r_event),
            "occurred_at": _iso(start_s + np.floor(r_t * _DAY_S).astype(np.int64)),
            "revenue": pa.array(r_rev, mask=np.isnan(r_rev)),
        }
    )
