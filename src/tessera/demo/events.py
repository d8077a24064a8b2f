"""The events table: browsing sessions, abandoned carts and the visits around each order."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tessera.demo.arrow import _take, _timestamps
from tessera.demo.customers import _Chunk
from tessera.demo.orders import _Orders
from tessera.demo.world import (
    _AFTER_DROPOUT,
    _APP,
    _CART,
    _DAY_S,
    _DECAY_EDGES,
    _DECAY_LEVELS,
    _PROD,
    _PV,
    _SEARCH,
    CATEGORIES,
    EVENT_TYPES,
    _Calendar,
    _nhpp,
    _pick,
)


def _sessions_to_events(
    rng: np.random.Generator,
    owner: np.ndarray,
    t0: np.ndarray,
    cat: np.ndarray,
    is_app: np.ndarray,
    n_extra: np.ndarray,
    carts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Expand sessions into events: an entry event, n_extra browsing events, then `carts`
    add_to_cart events, a minute or two apart."""
    k = 1 + n_extra + carts
    sid = np.repeat(np.arange(len(owner)), k)
    pos = np.arange(len(sid)) - np.repeat(np.cumsum(k) - k, k)
    gaps = rng.exponential(70.0 / _DAY_S, len(sid))
    gaps[pos == 0] = 0.0
    cs = np.cumsum(gaps)
    t = t0[sid] + cs - np.repeat(cs[np.cumsum(k) - k], k)
    etype = np.where(
        rng.random(len(sid)) < 0.65, _PROD, np.where(rng.random(len(sid)) < 0.65, _PV, _SEARCH)
    )
    etype[pos == 0] = np.where(
        is_app[owner[sid[pos == 0]]] & (rng.random((pos == 0).sum()) < 0.8), _APP, _PV
    )
    etype[pos >= (1 + n_extra)[sid]] = _CART
    ecat = cat[sid].astype(np.int16)
    null_p = np.select([etype == _APP, etype == _SEARCH, etype == _PV], [0.9, 0.5, 0.3], 0.0)
    ecat[rng.random(len(sid)) < null_p] = -1
    return owner[sid], t, etype.astype(np.int8), ecat


def _simulate_events(
    rng: np.random.Generator, c: _Chunk, o: _Orders, cal: _Calendar
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = len(c.signup)
    horizon = float(cal.n_days)
    parts = []

    # Browsing sessions, fading in the weeks before the latent dropout and nearly gone after it.
    edges = [c.signup]
    levels = []
    bounds = [c.dropout - e for e in _DECAY_EDGES]
    seg_lo = [c.signup, *[np.maximum(b, c.signup) for b in bounds]]
    seg_hi = [np.maximum(bounds[0], c.signup), *[np.maximum(b, c.signup) for b in bounds[1:]]]
    seg_hi.append(np.full(n, horizon))
    levels = [1.0, *_DECAY_LEVELS, _AFTER_DROPOUT]
    del edges
    owners, times = [], []
    for lo, hi, level in zip(seg_lo, seg_hi, levels, strict=True):
        ow, t = _nhpp(
            rng, cal.hours, cal.cum_browse, c.activity * level, lo, np.minimum(hi, horizon)
        )
        owners.append(ow)
        times.append(t)
    s_owner = np.concatenate(owners)
    s_t = np.concatenate(times)
    s_day = np.minimum(s_t.astype(np.int64), cal.n_days - 1)
    s_cat = _pick(rng, c.affinity[s_owner] * cal.category[s_day])
    parts.append(
        _sessions_to_events(
            rng,
            s_owner,
            s_t,
            s_cat,
            c.is_app,
            rng.poisson(2.8, len(s_owner)),
            np.zeros(len(s_owner), np.int64),
        )
    )

    # Abandoned carts: shopping sessions that end with add_to_cart and no order.
    alive_hi = np.minimum(c.dropout, horizon)
    a_owner, a_t = _nhpp(rng, cal.hours, cal.cum_shop, 0.6 * c.rate + 0.002, c.signup, alive_hi)
    a_day = np.minimum(a_t.astype(np.int64), cal.n_days - 1)
    a_cat = _pick(rng, c.affinity[a_owner] * cal.category[a_day])
    parts.append(
        _sessions_to_events(
            rng,
            a_owner,
            a_t,
            a_cat,
            c.is_app,
            rng.poisson(2.5, len(a_owner)),
            1 + (rng.random(len(a_owner)) < 0.3),
        )
    )

    # Purchase sessions: entry, product views of the bought items, one add_to_cart per item,
    # then the order a few minutes later; 40% of orders also had a research visit days before.
    n_orders = len(o.t)
    first_item = np.searchsorted(o.item_order, np.arange(n_orders))
    o_cat = o.item_cat[first_item]
    n_items = np.bincount(o.item_order, minlength=n_orders)
    views = rng.poisson(2.5 * n_items) + 1
    start_t = o.t - (views + n_items + 1) * (80.0 / _DAY_S) - rng.exponential(5 / 1440, n_orders)
    p_owner, p_t, p_type, p_cat = _sessions_to_events(
        rng, o.owner, start_t, o_cat, c.is_app, views, n_items
    )
    # add_to_cart events carry the category of each item in turn
    cart_rows = np.flatnonzero(p_type == _CART)
    p_cat[cart_rows] = o.item_cat
    p_t = np.minimum(p_t, np.repeat(o.t, 1 + views + n_items) - 1.0 / _DAY_S)
    parts.append((p_owner, p_t, p_type, p_cat))
    research = rng.random(n_orders) < 0.4
    r_t = o.t[research] - rng.uniform(1.0, 5.0, research.sum())
    parts.append(
        _sessions_to_events(
            rng,
            o.owner[research],
            r_t,
            o_cat[research],
            c.is_app,
            rng.poisson(3.0, research.sum()) + 1,
            np.zeros(research.sum(), np.int64),
        )
    )

    owner = np.concatenate([p[0] for p in parts])
    t = np.concatenate([p[1] for p in parts])
    etype = np.concatenate([p[2] for p in parts])
    ecat = np.concatenate([p[3] for p in parts])
    keep = (t >= c.signup[owner]) & (t < horizon)
    owner, t, etype, ecat = owner[keep], t[keep], etype[keep], ecat[keep]
    order = np.argsort(owner * (horizon + 1.0) + t, kind="stable")
    return owner[order], t[order], etype[order], ecat[order]


def _events_table(
    rng: np.random.Generator,
    c: _Chunk,
    o: _Orders,
    cal: _Calendar,
    customer_ids: pa.Array,
    start_s: int,
) -> pa.Table:
    e_owner, e_t, e_type, e_cat = _simulate_events(rng, c, o, cal)
    return pa.table(
        {
            "customer_id": customer_ids.take(pa.array(e_owner)),
            "occurred_at": _timestamps(start_s + np.floor(e_t * _DAY_S).astype(np.int64)),
            "event_type": _take(EVENT_TYPES, e_type),
            "category": _take(CATEGORIES, np.maximum(e_cat, 0), valid=e_cat >= 0),
        }
    )
