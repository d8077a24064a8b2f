"""The demo shop's static world: vocabularies, countries, names, products, calendar, samplers."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from tessera.quality.registry import registry

CATEGORIES = ("handbags", "shoes", "ski", "outdoor", "electronics", "beauty", "home", "apparel")
# The vocabularies staging accepts, from the rule registry (src/tessera/quality/rules.yml). The
# generator draws by index, so their order there is part of the demo's output.
EVENT_TYPES = registry().accepted("events", "invalid_event_type")
RESPONSE_EVENTS = registry().accepted("campaign_responses", "invalid_event_type")
ORDER_STATUSES = registry().accepted("orders", "invalid_status")

_N_PRODUCTS = 60
_DAY_S = 86_400

_PV, _PROD, _CART, _SEARCH, _APP = range(5)
_DELIVERED, _OPEN, _CLICK, _BOUNCE, _UNSUB, _SPAM, _CONV = range(7)


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
