"""The order_items table: 1-4 items per order, by category affinity, season and price level."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from tessera.demo.arrow import _take
from tessera.demo.world import (
    _CAT_PREFIX,
    _CAT_QTY2,
    _LOCAL_CURRENCY,
    _N_PRODUCTS,
    CATEGORIES,
    _Calendar,
    _phi,
    _pick,
    _product_prices,
)

if TYPE_CHECKING:
    from tessera.demo.customers import _Chunk
    from tessera.demo.orders import _Orders

_PRICES = _product_prices()


def _simulate_items(
    rng: np.random.Generator, c: _Chunk, cal: _Calendar, owner: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Items of the orders (owner, time): order index, category, product, quantity, unit price,
    and each order's amount."""
    n_orders = len(owner)
    # Items: 1-4 per order; category from the customer's affinity x the day's category appeal;
    # product within the category by the customer's price level (richer -> pricier products).
    k = rng.choice(4, size=n_orders, p=[0.63, 0.25, 0.08, 0.04]) + 1
    item_order = np.repeat(np.arange(n_orders), k)
    day = np.minimum(t.astype(np.int64), cal.n_days - 1)
    item_day = day[item_order]
    item_owner = owner[item_order]
    cat = _pick(rng, c.affinity[item_owner] * cal.category[item_day])
    w = 0.7 * c.price_level[item_owner] + np.sqrt(1 - 0.49) * rng.normal(0, 1, len(item_order))
    product = np.minimum((_phi(w) * _N_PRODUCTS).astype(np.int64), _N_PRODUCTS - 1)
    qty_u = rng.random(len(item_order))
    p2 = _CAT_QTY2[cat]
    qty = 1 + (qty_u < p2).astype(np.int64) + (qty_u < p2 * 0.25).astype(np.int64)
    price = _PRICES[cat, product]
    on_sale = rng.random(len(item_order)) < cal.sale[item_day]
    price = np.where(on_sale, price * rng.choice([0.8, 0.9, 0.7], len(price)), price)
    fx = np.array([1.0, _LOCAL_CURRENCY["GB"][1], _LOCAL_CURRENCY["US"][1]])
    item_cur = c.currency[item_owner]
    price = np.round(price * fx[item_cur], 2)
    converted = item_cur > 0
    price[converted] = np.ceil(price[converted]) - 0.01
    amount = np.round(np.bincount(item_order, weights=price * qty, minlength=n_orders), 2)
    return item_order, cat, product, qty, price, amount


def _items_table(o: _Orders, order_ids: pa.StringArray) -> pa.Table:
    product_ids = [f"{p}-{k + 1:04d}" for p in _CAT_PREFIX for k in range(_N_PRODUCTS)]
    return pa.table(
        {
            "order_id": order_ids.take(pa.array(o.item_order)),
            "product_id": _take(product_ids, o.item_cat * _N_PRODUCTS + o.item_product),
            "category": _take(CATEGORIES, o.item_cat),
            "quantity": pa.array(o.item_qty.astype(np.int64)),
            "unit_price": pa.array(o.item_price),
        }
    )
