"""Synthetic demo shop: realistic customers, orders, events and newsletter history as landing Parquet."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import time
import unicodedata
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

TABLES = ("customers", "orders", "order_items", "events", "campaign_responses")
CATEGORIES = ("handbags", "shoes", "ski", "outdoor", "electronics", "beauty", "home", "apparel")
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "search", "app_open")
RESPONSE_EVENTS = (
    "delivered",
    "open",
    "click",
    "bounce",
    "unsubscribe",
    "spam_report",
    "conversion",
)
ORDER_STATUSES = ("completed", "cancelled", "refunded")

# Customers per chunk: one part file per chunk and table, each chunk with its own random stream
# derived from (seed, chunk index), so the output never depends on how the work is scheduled.
CHUNK_SIZE = 100_000
_N_PRODUCTS = 60
_DAY_S = 86_400

_PV, _PROD, _CART, _SEARCH, _APP = range(5)
_DELIVERED, _OPEN, _CLICK, _BOUNCE, _UNSUB, _SPAM, _CONV = range(7)


class DemoShopError(ValueError):
    """The demo shop cannot be generated with the given arguments."""


@dataclass(frozen=True)
class ShopSummary:
    """What `generate_shop` wrote: row counts and part files per table, and the ground truth."""

    out_dir: Path
    ground_truth_path: Path
    customers: int
    seed: int
    start: date
    end: date
    dirty_rate: float
    rows: dict[str, int] = field(default_factory=dict)
    paths: dict[str, list[Path]] = field(default_factory=dict)
    elapsed_seconds: float = 0.0


# --------------------------------------------------------------------------------------------
# Static shop world: countries, names, products, calendar
# --------------------------------------------------------------------------------------------

_COUNTRIES = ("DE", "FR", "GB", "NL", "IT", "ES", "AT", "CH", "SE", "US")
_COUNTRY_P = np.array([0.30, 0.14, 0.11, 0.08, 0.08, 0.08, 0.06, 0.05, 0.04, 0.06])
_LANG = {"DE": "de", "AT": "de", "CH": "de", "FR": "fr", "GB": "en", "US": "en", "NL": "nl"}
_LANG.update({"IT": "it", "ES": "es", "SE": "sv"})
_FIRST = {
    "de": "Anna Lena Julia Laura Sarah Lisa Katharina Sophie Marie Hannah Lukas Jonas Leon Felix "
    "Maximilian Paul Tobias Jan Florian Niklas Jürgen Sören",
    "fr": "Camille Léa Manon Chloé Emma Inès Sarah Julie Louise Claire Lucas Hugo Louis Théo "
    "Nathan Antoine Julien Nicolas Thomas Mathieu",
    "en": "Olivia Amelia Isla Emily Sophie Grace Jessica Charlotte Lucy Hannah Oliver Harry "
    "George Jack Jacob Thomas James William Daniel Samuel",
    "nl": "Emma Julia Sophie Lotte Anouk Sanne Fleur Eva Daan Sem Lucas Milan Thijs Bram Jesse "
    "Ruben Lars Joris",
    "it": "Giulia Sofia Martina Chiara Francesca Alessia Sara Aurora Francesco Alessandro Lorenzo "
    "Matteo Andrea Luca Marco Davide Giuseppe Nicolò",
    "es": "Lucía María Paula Laura Marta Sara Carmen Elena Alba Hugo Pablo Daniel Alejandro Javier "
    "Sergio Carlos Álvaro Diego",
    "sv": "Alice Maja Elsa Ebba Wilma Astrid Saga Linnea William Liam Oscar Lucas Hugo Elias "
    "Erik Axel Björn",
}
_LAST = {
    "de": "Schmidt Mueller Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch "
    "Richter Klein Wolf Neumann Braun",
    "fr": "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent "
    "Lefebvre Michel Garcia",
    "en": "Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright Thompson Evans "
    "Walker White Roberts Miller",
    "nl": "deJong Jansen deVries vandenBerg vanDijk Bakker Janssen Visser Smit Meijer deBoer "
    "Mulder",
    "it": "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo "
    "Conti",
    "es": "Garcia Rodriguez Gonzalez Fernandez Lopez Martinez Sanchez Perez Gomez Martin Jimenez "
    "Ruiz Hernandez",
    "sv": "Andersson Johansson Karlsson Nilsson Eriksson Larsson Olsson Persson Svensson Gustafsson",
}
_DOMAINS = {
    "DE": "gmail.com web.de gmx.de t-online.de outlook.com",
    "FR": "gmail.com orange.fr free.fr hotmail.fr",
    "GB": "gmail.com hotmail.co.uk yahoo.co.uk outlook.com",
    "NL": "gmail.com ziggo.nl hotmail.nl",
    "IT": "gmail.com libero.it hotmail.it",
    "ES": "gmail.com hotmail.es yahoo.es",
    "AT": "gmx.at gmail.com aon.at",
    "CH": "bluewin.ch gmail.com gmx.ch",
    "SE": "gmail.com telia.com hotmail.se",
    "US": "gmail.com yahoo.com outlook.com icloud.com",
}
# (calling code, mobile prefixes, national number length)
_PHONE = {
    "DE": ("49", ("151", "160", "176", "172"), 11),
    "FR": ("33", ("6", "7"), 9),
    "GB": ("44", ("7",), 10),
    "NL": ("31", ("6",), 9),
    "IT": ("39", ("33", "34", "32"), 10),
    "ES": ("34", ("6",), 9),
    "AT": ("43", ("664", "676"), 10),
    "CH": ("41", ("79", "76"), 9),
    "SE": ("46", ("70", "73"), 9),
    "US": ("1", ("212", "415", "617", "312"), 10),
}
# Customers from GB/US mostly pay in their own currency; amounts are converted list prices.
_LOCAL_CURRENCY = {"GB": ("GBP", 0.86, 0.7), "US": ("USD", 1.09, 0.9)}

# Category price medians (EUR), log-price spread, product id prefix, mean extra quantity.
_CAT_MEDIAN = np.array([180.0, 95.0, 320.0, 75.0, 250.0, 28.0, 45.0, 55.0])
_CAT_SIGMA = np.array([0.55, 0.40, 0.50, 0.55, 0.70, 0.45, 0.60, 0.45])
_CAT_PREFIX = ("HBG", "SHO", "SKI", "OUT", "ELE", "BEA", "HOM", "APP")
_CAT_QTY2 = np.array([0.03, 0.06, 0.04, 0.10, 0.03, 0.25, 0.12, 0.12])
_CAT_POPULARITY = np.array([0.8, 1.2, 0.5, 0.9, 0.7, 1.3, 1.0, 1.6])

_HOUR_PROFILE = np.array(
    [0.3, 0.2, 0.15, 0.1, 0.1, 0.15, 0.3, 0.6, 0.9, 1.0, 1.1, 1.2]
    + [1.3, 1.2, 1.1, 1.1, 1.2, 1.3, 1.5, 1.7, 1.8, 1.6, 1.1, 0.6]
)

# Browsing decays in the weeks before the latent dropout (days before it -> activity multiplier):
# the leading signal a churn model can find beyond recency and frequency.
_DECAY_EDGES = (56.0, 42.0, 28.0, 14.0, 0.0)
_DECAY_LEVELS = (0.6, 0.35, 0.2, 0.1)
_AFTER_DROPOUT = 0.03


def _ascii(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return folded.lower()


def _product_prices() -> np.ndarray:
    """List prices (EUR) of _N_PRODUCTS products per category, ascending within a category."""
    quantiles = (np.arange(_N_PRODUCTS) + 0.5) / _N_PRODUCTS
    z = _probit(quantiles)
    raw = _CAT_MEDIAN[:, None] * np.exp(_CAT_SIGMA[:, None] * z[None, :])
    return np.ceil(raw) - 0.01  # shop prices end in .99


def _probit(p: np.ndarray) -> np.ndarray:
    """Inverse normal CDF by bisection on _phi (only used on small static grids)."""
    lo, hi = np.full_like(p, -8.0), np.full_like(p, 8.0)
    for _ in range(60):
        mid = (lo + hi) / 2
        below = _phi(mid) < p
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return (lo + hi) / 2


def _phi(x: np.ndarray) -> np.ndarray:
    """Normal CDF (tanh approximation, max error ~2e-4, plenty for choosing products)."""
    return 0.5 * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))


@dataclass(frozen=True)
class _Calendar:
    """Day-level seasonality over [start, end) and hourly cumulative intensities for sampling."""

    start: date
    n_days: int
    month: np.ndarray
    shop: np.ndarray  # orders / carts, mean 1
    browse: np.ndarray  # sessions, mean 1
    signup: np.ndarray
    category: np.ndarray  # (n_days, 8) relative category appeal
    sale: np.ndarray  # share of items sold at a discount that day
    hours: np.ndarray  # grid of hour boundaries in days
    cum_shop: np.ndarray
    cum_browse: np.ndarray
    cum_signup: np.ndarray


def _black_fridays(start: date, end: date) -> list[date]:
    days = []
    for year in range(start.year, end.year + 1):
        nov1 = date(year, 11, 1)
        thanksgiving = nov1 + timedelta(days=(3 - nov1.weekday()) % 7 + 21)
        days.append(thanksgiving + timedelta(days=1))
    return days


def _calendar(start: date, end: date) -> _Calendar:
    n_days = (end - start).days
    days = np.datetime64(start, "D") + np.arange(n_days)
    month = (days.astype("datetime64[M]").astype(np.int64) % 12) + 1
    dom = (days - days.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    weekday = (days.astype(np.int64) + 3) % 7  # Monday = 0

    month_factor = np.array([0.95, 0.85, 0.95, 0.95, 1.0, 0.9, 0.8, 0.8, 0.95, 1.0, 1.1, 1.3])
    shop = month_factor[month - 1].copy()
    december = month == 12
    shop[december & (dom <= 20)] = 1.25 + 0.5 * dom[december & (dom <= 20)] / 20.0
    shop[december & (dom >= 21) & (dom <= 23)] = 1.2
    shop[december & (dom >= 24) & (dom <= 26)] = 0.5
    shop[(month == 1) & (dom <= 14)] *= 1.25  # January sales
    sale = np.full(n_days, 0.05)
    sale[(month == 1) & (dom <= 14)] = 0.35
    electronics_boost = np.ones(n_days)
    for bf in _black_fridays(start, end):
        for offset, factor in ((-7, 1.2), (-6, 1.2), (-5, 1.2), (-4, 1.2), (-3, 1.25), (-2, 1.3)):
            _bump(shop, start, bf + timedelta(days=offset), factor)
        for offset, factor in ((-1, 1.5), (0, 3.0), (1, 2.2), (2, 1.9), (3, 2.6)):
            _bump(shop, start, bf + timedelta(days=offset), factor)
            _bump(sale, start, bf + timedelta(days=offset), 8.0)
            _bump(electronics_boost, start, bf + timedelta(days=offset), 1.8)
    sale = np.minimum(sale, 0.5)
    week = np.where(weekday >= 5, 1.18, 0.93)
    shop = shop * week
    browse = (1.0 + 0.5 * (shop / week - 1.0)) * np.where(weekday >= 5, 1.15, 0.94)
    signup = (shop / week) ** 0.8 * np.where(weekday >= 5, 1.1, 0.96)

    cat = np.ones((n_days, len(CATEGORIES)))
    winter = np.isin(month, (11, 12, 1, 2))
    cat[:, 2] = np.select([winter, np.isin(month, (3, 10))], [2.6, 1.2], 0.25)  # ski
    cat[:, 3] = np.select([np.isin(month, (4, 5, 6, 7, 8, 9)), winter], [1.5, 0.7], 1.0)
    cat[december, 5] = 1.5  # beauty gifts
    cat[december, 0] = 1.3  # handbags gifts
    cat[np.isin(month, (11, 12)), 6] = 1.2  # home
    cat[:, 4] = electronics_boost * np.where(december, 1.3, 1.0)

    hour_w = _HOUR_PROFILE / _HOUR_PROFILE.mean()
    hours = np.arange(n_days * 24 + 1) / 24.0

    def cumulative(day_mult: np.ndarray) -> np.ndarray:
        per_hour = (day_mult / day_mult.mean())[:, None] * hour_w[None, :] / 24.0
        return np.concatenate([[0.0], np.cumsum(per_hour.ravel())])

    growth = 1.0 + 1.2 * np.arange(n_days) / max(n_days, 1)
    return _Calendar(
        start=start,
        n_days=n_days,
        month=month,
        shop=shop / shop.mean(),
        browse=browse / browse.mean(),
        signup=signup,
        category=cat,
        sale=sale,
        hours=hours,
        cum_shop=cumulative(shop),
        cum_browse=cumulative(browse),
        cum_signup=cumulative(signup * growth),
    )


def _bump(arr: np.ndarray, start: date, day: date, factor: float) -> None:
    i = (day - start).days
    if 0 <= i < len(arr):
        arr[i] *= factor


def _nhpp(
    rng: np.random.Generator,
    hours: np.ndarray,
    cum: np.ndarray,
    rate: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson process with intensity rate[i] x seasonality on [lo[i], hi[i]) for every i at once.

    Returns (owner index, time in days) by inverting the cumulative seasonal intensity.
    """
    c_lo = np.interp(lo, hours, cum)
    c_hi = np.interp(np.maximum(hi, lo), hours, cum)
    n = rng.poisson(rate * (c_hi - c_lo))
    owner = np.repeat(np.arange(len(rate)), n)
    u = c_lo[owner] + rng.random(len(owner)) * (c_hi - c_lo)[owner]
    t = np.interp(u, cum, hours)
    t = np.clip(t, lo[owner], np.nextafter(hi[owner], -np.inf))
    return owner, t


def _pick(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (n, k) weight matrix."""
    cdf = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cdf[:, -1]
    return np.minimum((cdf < u[:, None]).sum(axis=1), weights.shape[1] - 1)


# --------------------------------------------------------------------------------------------
# Fast Arrow string building
# --------------------------------------------------------------------------------------------


def _iso(seconds: np.ndarray, offset_minutes: np.ndarray | None = None) -> pa.StringArray:
    """ISO-8601 strings with offset for UTC epoch seconds, written in local clock time when an
    offset is given ('2025-03-01T12:00:00+02:00' is the same instant as 10:00 UTC)."""
    n = len(seconds)
    off = np.zeros(n, dtype=np.int64) if offset_minutes is None else offset_minutes
    ts = (seconds + off * 60).astype("datetime64[s]")
    d = ts.astype("datetime64[D]")
    m = ts.astype("datetime64[M]")
    year = ts.astype("datetime64[Y]").astype(np.int64) + 1970
    mon = m.astype(np.int64) % 12 + 1
    day = (d - m.astype("datetime64[D]")).astype(np.int64) + 1
    sod = (ts - d.astype("datetime64[s]")).astype(np.int64)
    hh, rem = np.divmod(sod, 3600)
    mi, ss = np.divmod(rem, 60)
    oh, om = np.divmod(np.abs(off), 60)
    buf = np.empty((n, 25), dtype=np.uint8)
    buf[:] = np.frombuffer(b"0000-00-00T00:00:00+00:00", dtype=np.uint8)
    for col, val, width in (
        (0, year, 4), (5, mon, 2), (8, day, 2), (11, hh, 2), (14, mi, 2), (17, ss, 2),
        (20, oh, 2), (23, om, 2),
    ):  # fmt: skip
        for k in range(width):
            buf[:, col + width - 1 - k] = 48 + (val // 10**k) % 10
    buf[:, 19] = np.where(off < 0, ord("-"), ord("+"))
    offsets = np.arange(n + 1, dtype=np.int32) * 25
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf))


def _fixed_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.StringArray:
    """'C0000001'-style ids: prefix plus zero-padded numbers, built without Python loops."""
    n = len(numbers)
    p = prefix.encode()
    buf = np.empty((n, len(p) + width), dtype=np.uint8)
    buf[:, : len(p)] = np.frombuffer(p, dtype=np.uint8)
    for k in range(width):
        buf[:, len(p) + width - 1 - k] = 48 + (numbers // 10**k) % 10
    offsets = np.arange(n + 1, dtype=np.int32) * buf.shape[1]
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf))


def _take(values: list[str] | tuple[str, ...], index: np.ndarray, valid=None) -> pa.Array:
    """Strings looked up by index; rows where `valid` is False are NULL."""
    idx = pa.array(index.astype(np.int32), mask=None if valid is None else ~valid)
    return pa.array(list(values), pa.string()).take(idx)


def _concat(*parts: pa.Array | str) -> pa.Array:
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(*parts, "")


# --------------------------------------------------------------------------------------------
# Customers
# --------------------------------------------------------------------------------------------


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

    # Dirty contact data: invalid addresses (bounce in the newsletter history) and addresses
    # that are valid once trimmed and lower-cased.
    email_invalid = np.zeros(n, dtype=bool)
    if dirty_rate > 0:
        bad = np.flatnonzero(rng.random(n) < dirty_rate)
        kind = rng.integers(0, 4, len(bad))
        em = email[bad].astype(str)
        local_part = np.array([e.split("@")[0] for e in em])
        bad_values = np.where(
            kind == 0,
            np.char.add(local_part, "@"),
            np.where(
                kind == 1,
                "n/a",
                np.where(kind == 2, "x@y", np.char.replace(em, ".", " ", count=1)),
            ),
        )
        email[bad] = bad_values.astype(object)
        email_invalid[bad] = True
        fixable = np.flatnonzero((rng.random(n) < dirty_rate) & ~email_invalid)
        fe = email[fixable].astype(str)
        upper = rng.random(len(fixable)) < 0.5
        email[fixable] = np.where(
            upper, np.char.upper(fe), np.char.add(np.char.add(" ", fe), " ")
        ).astype(object)
        bad_phone = np.flatnonzero((rng.random(n) < dirty_rate) & c.has_phone)
        templates = np.array(["12345", "n/a", "+49 (0) abc", "0000000000", "++4915"])
        phone[bad_phone] = templates[rng.integers(0, len(templates), len(bad_phone))].astype(object)

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


# --------------------------------------------------------------------------------------------
# Orders and items
# --------------------------------------------------------------------------------------------


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


_PRICES = _product_prices()
_TZ_OFFSETS_MIN = np.array([60, 120, -300, 330, 60, 120, -240, 540])


def _orders_tables(
    rng: np.random.Generator,
    o: _Orders,
    c: _Chunk,
    chunk_index: int,
    dirty_rate: float,
    start_s: int,
    customer_ids: pa.Array,
) -> tuple[pa.Table, pa.Table, np.ndarray]:
    n = len(o.t)
    order_ids = _fixed_ids(f"O{chunk_index:03d}", np.arange(1, n + 1), 7)
    seconds = start_s + np.floor(o.t * _DAY_S).astype(np.int64)
    offset = np.zeros(n, dtype=np.int64)
    rows = np.arange(n)
    if dirty_rate > 0:
        u = rng.random(n)
        o.status[u < dirty_rate] = np.where(rng.random(int((u < dirty_rate).sum())) < 0.5, 1, 2)
        shifted = rng.random(n) < dirty_rate
        offset[shifted] = _TZ_OFFSETS_MIN[rng.integers(0, len(_TZ_OFFSETS_MIN), shifted.sum())]
        dup = np.flatnonzero(rng.random(n) < dirty_rate)
        rows = np.sort(np.concatenate([rows, dup]))
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
    product_ids = [f"{p}-{k + 1:04d}" for p in _CAT_PREFIX for k in range(_N_PRODUCTS)]
    items = pa.table(
        {
            "order_id": order_ids.take(pa.array(o.item_order)),
            "product_id": _take(product_ids, o.item_cat * _N_PRODUCTS + o.item_product),
            "category": _take(CATEGORIES, o.item_cat),
            "quantity": pa.array(o.item_qty.astype(np.int64)),
            "unit_price": pa.array(o.item_price),
        }
    )
    return orders, items, seconds


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Newsletter history (before Tessera)
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Ground truth and the chunk driver
# --------------------------------------------------------------------------------------------


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


def _timestamps(seconds: np.ndarray) -> pa.Array:
    return pa.array(seconds.astype("datetime64[s]")).cast(pa.timestamp("us", tz="UTC"))


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


def _generate_chunk(
    chunk_index: int,
    first: int,
    signup: np.ndarray,
    seed: int,
    cal: _Calendar,
    dirty_rate: float,
    start_s: int,
) -> tuple[dict[str, pa.Table], pa.Table]:
    rng = np.random.default_rng([seed, 2, chunk_index])
    c = _latent(rng, first, signup)
    customers, c.email_invalid = _customers_table(rng, c, dirty_rate, start_s)
    customer_ids = customers.column("customer_id").combine_chunks()
    o = _simulate_orders(rng, c, cal)
    orders, items, _ = _orders_tables(rng, o, c, chunk_index, dirty_rate, start_s, customer_ids)
    e_owner, e_t, e_type, e_cat = _simulate_events(rng, c, o, cal)
    events = pa.table(
        {
            "customer_id": customer_ids.take(pa.array(e_owner)),
            "occurred_at": _timestamps(start_s + np.floor(e_t * _DAY_S).astype(np.int64)),
            "event_type": _take(EVENT_TYPES, e_type),
            "category": _take(CATEGORIES, np.maximum(e_cat, 0), valid=e_cat >= 0),
        }
    )
    ids, r_cust, r_month, r_event, r_t, r_rev = _simulate_responses(rng, c, o, cal)
    campaign_ids = _take(ids, r_month)
    r_customer_ids = customer_ids.take(pa.array(r_cust))
    responses = pa.table(
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
    tables = {
        "customers": customers,
        "orders": orders,
        "order_items": items,
        "events": events,
        "campaign_responses": responses,
    }
    return tables, _ground_truth(c, cal, start_s, customer_ids, c.one_time)


def _write_chunk(
    tmp: Path,
    chunk_index: int,
    first: int,
    signup: np.ndarray,
    seed: int,
    cal: _Calendar,
    dirty_rate: float,
    start_s: int,
) -> tuple[dict[str, int], pa.Table]:
    """Generate one chunk, write its part files under ``tmp``; return row counts and truth."""
    tables, truth = _generate_chunk(chunk_index, first, signup, seed, cal, dirty_rate, start_s)
    rows = {}
    for name, table in tables.items():
        (tmp / name).mkdir(exist_ok=True)
        pq.write_table(table, tmp / name / f"part-{chunk_index:05d}.parquet", compression="zstd")
        rows[name] = table.num_rows
    log.info("demo shop: chunk %d (%d customers) written", chunk_index, truth.num_rows)
    return rows, truth


def _collect(results, truth_path: Path, rows: dict[str, int]) -> pq.ParquetWriter:
    """Add up row counts and append each chunk's ground truth, in chunk order."""
    writer: pq.ParquetWriter | None = None
    for chunk_rows, truth in results:
        for name, n in chunk_rows.items():
            rows[name] += n
        if writer is None:
            writer = pq.ParquetWriter(truth_path, truth.schema, compression="zstd")
        writer.write_table(truth)
    assert writer is not None
    return writer


def _validate(customers: int, start: date, end: date, dirty_rate: float) -> None:
    if isinstance(start, datetime) or isinstance(end, datetime):
        raise DemoShopError("start and end must be dates (data runs up to end 00:00 UTC)")
    if customers < 1:
        raise DemoShopError(f"customers must be at least 1, got {customers}")
    if start >= end:
        raise DemoShopError(f"start ({start}) must be before end ({end})")
    if not 0.0 <= dirty_rate <= 0.2:
        raise DemoShopError(f"dirty_rate must be between 0 and 0.2, got {dirty_rate}")


def generate_shop(
    out_dir: Path,
    customers: int,
    seed: int,
    start: date,
    end: date,
    dirty_rate: float = 0.01,
    workers: int = 1,
) -> ShopSummary:
    """Write a synthetic shop as landing Parquet under ``out_dir/<table>/part-NNNNN.parquet``.

    Data covers [start 00:00 UTC, end 00:00 UTC). The latent truth (purchase rates, dropout
    moments, basket values, affinities) goes to ``out_dir.parent/ground_truth/customers.parquet``,
    outside the landing folder. Tables are written to a temporary folder beside ``out_dir`` and
    renamed into place only when all are complete; existing tables in ``out_dir`` are replaced.
    Chunks of ``CHUNK_SIZE`` customers run on ``workers`` spawned processes when more than one
    (the caller's main module then needs an ``if __name__ == "__main__"`` guard).
    """
    _validate(customers, start, end, dirty_rate)
    began = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.parent.glob(f".{out_dir.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed run
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    cal = _calendar(start, end)
    start_s = int(np.datetime64(start, "s").astype(np.int64))
    signup = _signup_days(customers, seed, cal)
    rows = dict.fromkeys(TABLES, 0)
    gt_name = "ground_truth_customers.parquet"
    try:
        writer: pq.ParquetWriter | None = None
        jobs = [
            (tmp, k, first, signup[first : first + CHUNK_SIZE], seed, cal, dirty_rate, start_s)
            for k, first in enumerate(range(0, customers, CHUNK_SIZE))
        ]
        n_workers = max(1, min(workers, len(jobs)))
        if n_workers > 1:
            # Spawned workers: safe inside Dagster or threads; each chunk has its own seed, so
            # the files are the same whatever the number of workers.
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(n_workers, mp_context=ctx) as pool:
                results = pool.map(_write_chunk, *zip(*jobs, strict=True))
                writer = _collect(results, tmp / gt_name, rows)
        else:
            writer = _collect((_write_chunk(*job) for job in jobs), tmp / gt_name, rows)
        writer.close()

        out_dir.mkdir(parents=True, exist_ok=True)
        trash = tmp / "_replaced"
        trash.mkdir()
        for name in TABLES:
            target = out_dir / name
            if target.exists():
                target.rename(trash / name)
            (tmp / name).rename(target)
        truth_dir = out_dir.parent / "ground_truth"
        truth_dir.mkdir(exist_ok=True)
        truth_path = truth_dir / "customers.parquet"
        os.replace(tmp / gt_name, truth_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = ShopSummary(
        out_dir=out_dir,
        ground_truth_path=truth_path,
        customers=customers,
        seed=seed,
        start=start,
        end=end,
        dirty_rate=dirty_rate,
        rows=rows,
        paths={t: sorted((out_dir / t).glob("part-*.parquet")) for t in TABLES},
        elapsed_seconds=time.perf_counter() - began,
    )
    log.info("demo shop written to %s in %.1f s: %s", out_dir, summary.elapsed_seconds, rows)
    return summary
