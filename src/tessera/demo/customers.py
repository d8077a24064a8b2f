"""The customers table: signup times, latent traits, contact data, and the ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from tessera.demo.arrow import _fixed_ids, _iso, _take, _timestamps
from tessera.demo.dirty import _dirty_contacts
from tessera.demo.world import (
    _CAT_MEDIAN,
    _CAT_POPULARITY,
    _CAT_QTY2,
    _CAT_SIGMA,
    _COUNTRIES,
    _COUNTRY_P,
    _DAY_S,
    _DOMAINS,
    _FIRST,
    _LANG,
    _LAST,
    _LOCAL_CURRENCY,
    _PHONE,
    CATEGORIES,
    _ascii,
    _Calendar,
)


def _signup_days(customers: int, seed: int, cal: _Calendar) -> np.ndarray:
    """Signup time (days since start) of every customer, sorted, so ids grow with signup time.

    A fifth of the customers are the base the shop starts with (imported in its first week);
    the rest sign up at a growing rate with the shop's seasonality.
    """
    rng = np.random.default_rng([seed, 1])
    n_base = int(round(customers * 0.2))
    base = rng.random(n_base) * min(7.0, cal.n_days)
    u = rng.random(customers - n_base) * cal.cum_signup[-1]
    later = np.interp(u, cal.cum_signup, cal.hours)
    out = np.sort(np.concatenate([base, later]))
    return np.minimum(out, np.nextafter(float(cal.n_days), 0))


@dataclass
class _Chunk:
    """Latent traits of the customers of one chunk (index i = customer first + i)."""

    first: int
    signup: np.ndarray
    country: np.ndarray
    is_buyer: np.ndarray
    rate: np.ndarray
    dropout: np.ndarray
    price_level: np.ndarray
    affinity: np.ndarray
    activity: np.ndarray
    is_app: np.ndarray
    engagement: np.ndarray
    currency: np.ndarray  # 0 EUR, 1 GBP, 2 USD
    email_opt_in: np.ndarray
    sms_opt_in: np.ndarray
    has_phone: np.ndarray
    email_invalid: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    one_time: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


def _latent(rng: np.random.Generator, first: int, signup: np.ndarray) -> _Chunk:
    n = len(signup)
    country = rng.choice(len(_COUNTRIES), size=n, p=_COUNTRY_P)
    is_buyer = rng.random(n) < 0.78
    # Pareto/NBD: gamma-heterogeneous purchase rates and exponential lifetimes with
    # gamma-heterogeneous dropout rates.
    rate = rng.gamma(0.85, (1 / 50) / 0.85, n)
    rate = np.where(is_buyer, np.minimum(rate, 0.5), 0.0)
    dropout_rate = rng.gamma(1.5, (1 / 480) / 1.5, n)
    lifetime = rng.exponential(1.0, n) / dropout_rate
    dropout = signup + lifetime
    price_level = rng.normal(0.0, 1.0, n)
    affinity = rng.dirichlet(np.full(len(CATEGORIES), 0.35), n) * _CAT_POPULARITY
    affinity /= affinity.sum(axis=1, keepdims=True)
    is_app = rng.random(n) < 0.35
    # Browsing sessions per day: engaged buyers browse more; gamma heterogeneity on top.
    activity = rng.gamma(1.3, 1.0 / 1.3, n) * (0.045 + 1.2 * np.sqrt(rate)) * 0.2
    activity = np.where(is_app, activity * 1.3, activity)
    engagement = rng.beta(1.6, 3.4, n)
    cur = np.zeros(n, dtype=np.int8)
    for code, (_, _, share) in _LOCAL_CURRENCY.items():
        here = country == _COUNTRIES.index(code)
        cur[here & (rng.random(n) < share)] = 1 if code == "GB" else 2
    has_phone = rng.random(n) < 0.82
    return _Chunk(
        first=first,
        signup=signup,
        country=country,
        is_buyer=is_buyer,
        rate=rate,
        dropout=dropout,
        price_level=price_level,
        affinity=affinity,
        activity=activity,
        is_app=is_app,
        engagement=engagement,
        currency=cur,
        email_opt_in=rng.random(n) < 0.70,
        sms_opt_in=has_phone & (rng.random(n) < 0.35 / 0.82),
        has_phone=has_phone,
    )


def _customers_table(
    rng: np.random.Generator, c: _Chunk, dirty_rate: float, start_s: int
) -> tuple[pa.Table, np.ndarray]:
    n = len(c.signup)
    ids = _fixed_ids("C", np.arange(c.first + 1, c.first + n + 1), 7)
    first_name = np.empty(n, dtype=object)
    email = np.empty(n, dtype=object)
    phone = np.empty(n, dtype=object)
    number = np.arange(c.first + 1, c.first + n + 1)
    # Loops below run over countries and templates, never over customers.
    for ci, code in enumerate(_COUNTRIES):
        rows = np.flatnonzero(c.country == ci)
        if len(rows) == 0:
            continue
        lang = _LANG[code]
        firsts = _FIRST[lang].split()
        lasts = _LAST[lang].split()
        domains = _DOMAINS[code].split()
        fi = rng.integers(0, len(firsts), len(rows))
        li = rng.integers(0, len(lasts), len(rows))
        di = rng.integers(0, len(domains), len(rows))
        first_name[rows] = np.array(firsts, dtype=object)[fi]
        local = np.char.add(
            np.char.add(np.array([_ascii(f) for f in firsts])[fi], "."),
            np.array([_ascii(x) for x in lasts])[li],
        )
        local = np.char.add(local, number[rows].astype(str))
        email[rows] = np.char.add(np.char.add(local, "@"), np.array(domains)[di]).astype(object)
        cc, prefixes, length = _PHONE[code]
        pi = rng.integers(0, len(prefixes), len(rows))
        numbers = np.empty(len(rows), dtype=object)
        for k, prefix in enumerate(prefixes):
            sel = pi == k
            width = length - len(prefix)
            digits = rng.integers(10 ** (width - 1), 10**width, sel.sum()).astype(str)
            numbers[sel] = np.char.add(f"+{cc}{prefix}", digits).astype(object)
        phone[rows] = numbers
    phone[~c.has_phone] = None
    # Dirty contact data: invalid addresses and addresses that are valid once normalised.
    email_invalid = _dirty_contacts(rng, email, phone, c.has_phone, dirty_rate)

    created_s = start_s + np.floor(c.signup * _DAY_S).astype(np.int64)
    table = pa.table(
        {
            "customer_id": ids,
            "email": pa.array(email, pa.string()),
            "phone": pa.array(phone, pa.string()),
            "created_at": _iso(created_s),
            "country": _take(_COUNTRIES, c.country),
            "email_opt_in": pa.array(c.email_opt_in),
            "sms_opt_in": pa.array(c.sms_opt_in),
            "first_name": pa.array(first_name, pa.string()),
        }
    )
    return table, email_invalid


def _mean_basket_value(c: _Chunk, cal: _Calendar) -> np.ndarray:
    """Expected order value (EUR) from the customer's latent affinity and price level."""
    appeal = c.affinity * cal.category.mean(axis=0)
    appeal /= appeal.sum(axis=1, keepdims=True)
    qty = 1 + _CAT_QTY2 * 1.25
    price = _CAT_MEDIAN[None, :] * np.exp(
        _CAT_SIGMA[None, :] * 0.7 * c.price_level[:, None] + _CAT_SIGMA[None, :] ** 2 * 0.51 / 2
    )
    items_per_order = 1 * 0.63 + 2 * 0.25 + 3 * 0.08 + 4 * 0.04
    return np.round(items_per_order * (appeal * qty * price).sum(axis=1), 2)


def _ground_truth(
    c: _Chunk, cal: _Calendar, start_s: int, customer_ids: pa.Array, one_time: np.ndarray
) -> pa.Table:
    dropped = c.dropout < cal.n_days
    churn_s = start_s + np.floor(np.where(dropped, c.dropout, 0.0) * _DAY_S).astype(np.int64)
    churn = _timestamps(churn_s)
    churn = pa.array(churn.to_numpy(zero_copy_only=False), mask=~dropped).cast(
        pa.timestamp("us", tz="UTC")
    )
    top2 = np.argsort(-c.affinity, axis=1)[:, :2]
    favourites = pa.ListArray.from_arrays(
        pa.array(np.arange(0, 2 * len(top2) + 1, 2, dtype=np.int32)),
        _take(CATEGORIES, top2.ravel()),
    )
    return pa.table(
        {
            "customer_id": customer_ids,
            "signup_at": _timestamps(start_s + np.floor(c.signup * _DAY_S).astype(np.int64)),
            "is_buyer": pa.array(c.is_buyer),
            "is_one_time_buyer": pa.array(one_time),
            "purchase_rate_per_day": pa.array(np.where(one_time, 0.0, c.rate)),
            "churn_at": churn,
            "mean_basket_value": pa.array(_mean_basket_value(c, cal)),
            "favourite_categories": favourites,
            "sessions_per_day": pa.array(c.activity),
            "is_app_user": pa.array(c.is_app),
            "email_engagement": pa.array(c.engagement),
        }
    )
