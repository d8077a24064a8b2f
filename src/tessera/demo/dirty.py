"""Dirty rows of the demo shop, at ``dirty_rate``: bad contact data, shifted and duplicated orders.

Each function draws from the chunk's random stream at the point where its table is built, so
the shop stays the same for the same seed.
"""

from __future__ import annotations

import numpy as np

_TZ_OFFSETS_MIN = np.array([60, 120, -300, 330, 60, 120, -240, 540])


def _dirty_contacts(
    rng: np.random.Generator,
    email: np.ndarray,
    phone: np.ndarray,
    has_phone: np.ndarray,
    dirty_rate: float,
) -> np.ndarray:
    """Spoil e-mail addresses and phone numbers in place; returns which addresses are invalid.

    Invalid addresses bounce in the newsletter history; others are valid once trimmed and
    lower-cased.
    """
    n = len(email)
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
        bad_phone = np.flatnonzero((rng.random(n) < dirty_rate) & has_phone)
        templates = np.array(["12345", "n/a", "+49 (0) abc", "0000000000", "++4915"])
        phone[bad_phone] = templates[rng.integers(0, len(templates), len(bad_phone))].astype(object)
    return email_invalid


def _dirty_orders(
    rng: np.random.Generator, status: np.ndarray, dirty_rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cancelled and refunded orders (``status`` in place), orders written in local time and
    exact duplicate rows; returns the UTC offset in minutes of each order and the rows to write.
    """
    n = len(status)
    offset = np.zeros(n, dtype=np.int64)
    rows = np.arange(n)
    if dirty_rate > 0:
        u = rng.random(n)
        status[u < dirty_rate] = np.where(rng.random(int((u < dirty_rate).sum())) < 0.5, 1, 2)
        shifted = rng.random(n) < dirty_rate
        offset[shifted] = _TZ_OFFSETS_MIN[rng.integers(0, len(_TZ_OFFSETS_MIN), shifted.sum())]
        dup = np.flatnonzero(rng.random(n) < dirty_rate)
        rows = np.sort(np.concatenate([rows, dup]))
    return offset, rows
