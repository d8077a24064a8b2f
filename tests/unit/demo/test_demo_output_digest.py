"""The demo shop is the same data for the same seed: a digest of a small shop, recorded once.

A change to the generator that changes its output (a new column, another random draw) must be
deliberate: re-record the digests below with the command in the failure message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import tessera.demo.generator as demo
from tessera.demo.generator import generate_shop

#: 700 customers in chunks of 300 (three chunks, the last one short), 2% dirty rows.
SPEC = {"customers": 700, "seed": 17, "start": dt.date(2024, 3, 1), "end": dt.date(2025, 3, 1)}
CHUNK = 300
#: The digests were recorded with the generator before it was split by table. The file bytes
#: also depend on the Parquet writer, so they are compared only under the same pyarrow.
PYARROW = "26.0.1"
FILES_SHA256 = "53bf3bc5b46c51e0e5e666c2a6b87b0a24b2f03a46b8f0668599381b6463305e"
CONTENT_SHA256 = "9139ea4c27343a50c39833e33e42422dfe16122e95a396039aee5d4208c46808"


def _shop(tmp_path: Path, monkeypatch) -> list[Path]:
    monkeypatch.setattr(demo, "CHUNK_SIZE", CHUNK)
    s = generate_shop(tmp_path / "landing", dirty_rate=0.02, workers=1, **SPEC)
    files = [p for t in demo.TABLES for p in s.paths[t]] + [s.ground_truth_path]
    assert len(s.paths["orders"]) == 3
    return files


def files_digest(root: Path, files: list[Path]) -> str:
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def content_digest(root: Path, files: list[Path]) -> str:
    """Schema and values of every part file, independent of the Parquet writer's version."""
    h = hashlib.sha256()
    for p in files:
        table = pq.read_table(p).combine_chunks()
        h.update(str(p.relative_to(root)).encode() + b"\0" + str(table.schema).encode())
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        h.update(sink.getvalue().to_pybytes())
    return h.hexdigest()


def test_same_seed_gives_the_recorded_shop(tmp_path, monkeypatch):
    files = _shop(tmp_path, monkeypatch)
    got = {
        "content": content_digest(tmp_path, files),
        "files": files_digest(tmp_path, files),
        "pyarrow": pa.__version__,
    }
    hint = f"re-record in {__file__} if the change is deliberate: {json.dumps(got)}"
    assert got["content"] == CONTENT_SHA256, hint
    if pa.__version__ == PYARROW:
        assert got["files"] == FILES_SHA256, hint
