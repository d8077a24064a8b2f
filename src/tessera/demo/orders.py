"""The orders table: when each customer orders (Pareto/NBD with seasonality) and what it costs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tessera.demo.arrow import _fixed_ids, _iso, _take
from tessera.demo.customers import _Chunk
from tessera.demo.dirty import _dirty_orders
from tessera.demo.order_items import _simulate_items
from tessera.demo.world import _DAY_S, ORDER_STATUSES, _Calendar, _nhpp


@dataclass
class _Orders:
    owner: np.ndarray  # chunk-local customer index, sorted by time
    t: np.ndarray  # days since start
    amount: np.ndarray
    status: np.ndarray
    item_order: np.ndarray
    item_cat: np.ndarray
    item_product: np.ndarray
    item_qty: np.ndarray
    item_price: np.ndarray


def _simulate_orders(rng: np.random.Generator, c: _Chunk, cal: _Calendar) -> _Orders:
    n = len(c.signup)
    horizon = float(cal.n_days)
    # Half of the buyers create their account at checkout; a fifth of the buyers are one-time
    # buyers who leave soon after their first order (the BG/NBD "drop after purchase" mass).
    # The initial base (first week) are existing customers imported at launch, not checkouts.
    at_checkout = c.is_buyer & (rng.random(n) < 0.5) & (c.signup >= 7.0)
    one_time = c.is_buyer & (rng.random(n) < 0.2)
    c.one_time = one_time
    delay = np.where(at_checkout, rng.exponential(8 / 1440, n), rng.exponential(6.0, n))
    first_t = c.signup + delay
    c.dropout = np.where(one_time, first_t + rng.uniform(1, 20, n), c.dropout)
    c.dropout = np.where(c.is_buyer & ~one_time, np.maximum(c.dropout, first_t), c.dropout)
    has_first = c.is_buyer & (at_checkout | one_time) & (first_t < horizon)
    lo = np.where(has_first, first_t, c.signup)
    hi = np.minimum(c.dropout, horizon)
    rate = np.where(one_time, 0.0, c.rate)
    owner, t = _nhpp(rng, cal.hours, cal.cum_shop, rate, lo, hi)
    first_idx = np.flatnonzero(has_first)
    owner = np.concatenate([first_idx, owner])
    t = np.concatenate([first_t[first_idx], t])
    order = np.lexsort((owner, t))
    owner, t = owner[order], t[order]
    n_orders = len(owner)

    item_order, cat, product, qty, price, amount = _simulate_items(rng, c, cal, owner, t)
    return _Orders(
        owner=owner,
        t=t,
        amount=amount,
        status=np.zeros(n_orders, dtype=np.int8),
        item_order=item_order,
        item_cat=cat,
        item_product=product,
        item_qty=qty,
        item_price=price,
    )


def _orders_table(
    rng: np.random.Generator,
    o: _Orders,
    c: _Chunk,
    chunk_index: int,
    dirty_rate: float,
    start_s: int,
    customer_ids: pa.Array,
) -> tuple[pa.Table, pa.StringArray]:
    """The orders (with dirty rows) and the id of each simulated order, for its items."""
    n = len(o.t)
    order_ids = _fixed_ids(f"O{chunk_index:03d}", np.arange(1, n + 1), 7)
    seconds = start_s + np.floor(o.t * _DAY_S).astype(np.int64)
    offset, rows = _dirty_orders(rng, o.status, dirty_rate)
    cur_code = np.array(["EUR", "GBP", "USD"])
    orders = pa.table(
        {
            "order_id": order_ids.take(pa.array(rows)),
            "customer_id": customer_ids.take(pa.array(o.owner[rows])),
            "ordered_at": _iso(seconds[rows], offset[rows]),
            "amount": pa.array(o.amount[rows]),
            "currency": _take(list(cur_code), c.currency[o.owner[rows]]),
            "status": _take(ORDER_STATUSES, o.status[rows]),
        }
    )
    return orders, order_ids
