"""Fast Arrow column building for the demo shop: ISO timestamps, fixed-width ids, lookups."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


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


def _timestamps(seconds: np.ndarray) -> pa.Array:
    return pa.array(seconds.astype("datetime64[s]")).cast(pa.timestamp("us", tz="UTC"))
