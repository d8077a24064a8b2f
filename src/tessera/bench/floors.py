"""Floors: what the hardware does with a stage's input in the simplest way (DuckDB scan, raw HTTP)."""

from __future__ import annotations

import http.client
import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import duckdb

from tessera.bench.measure import best_of

log = logging.getLogger(__name__)

#: Preferred grouping keys and summed measures, in order; the first column present wins.
_KEYS = ("customer_id", "order_id", "message_key", "micro_segment_id")
_MEASURES = (
    "amount",
    "line_amount",
    "unit_price",
    "revenue",
    "event_count",
    "revenue_total",
    "churn_probability",
    "customer_count",
)
_NUMERIC = ("INTEGER", "BIGINT", "DOUBLE", "FLOAT", "DECIMAL", "HUGEINT", "SMALLINT", "REAL")


@dataclass(frozen=True)
class Floor:
    """One floor: its time (best of N), the rows it scanned and what it did."""

    seconds: float
    rows: int
    description: str


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def aggregate_sql(source: str, columns: Sequence[tuple[str, str]], where: str = "") -> str:
    """`select key, count(*), sum(measure) from source group by key`, folded to one row.

    Folding the groups into one row keeps the fetch out of the timing: DuckDB still builds every
    group. Text measures (the raw schema stores text) are cast, as staging must do too.
    """
    names = [c for c, _ in columns]
    key = next((k for k in _KEYS if k in names), names[0])
    measure = next((m for m in _MEASURES if m in names), None)
    if measure is None:
        measure = next((c for c, t in columns if c != key and t.upper().startswith(_NUMERIC)), None)
    agg = f"sum(try_cast({_quote(measure)} as double))" if measure else "0"
    return (
        f"select count(*), sum(n), sum(s) from (select {_quote(key)}, count(*) as n, {agg} as s "
        f"from {source} {where} group by 1)"
    )


def _columns(con: duckdb.DuckDBPyConnection, source: str) -> list[tuple[str, str]]:
    rows = con.execute(f"describe select * from {source}").fetchall()
    return [(r[0], r[1]) for r in rows]


def resolve_table(con: duckdb.DuckDBPyConnection, asset: str) -> str | None:
    """The warehouse table of an asset: key `schema/table` is schema.table (the asset key
    scheme), `raw_<t>` is raw.<t>, otherwise a table of that name."""
    if "/" in asset:
        candidates = [tuple(asset.split("/", 1))]
    elif asset.startswith("raw_"):
        candidates = [("raw", asset.removeprefix("raw_"))]
    else:
        candidates = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_name = ? order by table_type = 'BASE TABLE' desc, table_schema",
            [asset],
        ).fetchall()
    for schema, table in candidates:
        found = con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()[0][0]
        if found:
            return f"{_quote(schema)}.{_quote(table)}"
    return None


def scan_floor(
    con: duckdb.DuckDBPyConnection, sources: Sequence[str], as_of: str, repeats: int
) -> Floor | None:
    """Scan-and-aggregate every source (a table or a read_parquet(...) call) once per repeat.

    Tables with an `as_of_date` column are limited to the campaign date, as the stage reads them.
    """
    queries, rows, names = [], 0, []
    for source in sources:
        columns = _columns(con, source)
        where = f"where as_of_date = date '{as_of}'" if "as_of_date" in dict(columns) else ""
        sql = aggregate_sql(source, columns, where)
        queries.append(sql)
        rows += int(con.execute(f"select count(*) from {source} {where}").fetchall()[0][0])
        names.append(source)
    if not queries:
        return None

    def scan() -> None:
        for sql in queries:
            con.execute(sql).fetchall()

    seconds = best_of(repeats, scan)
    return Floor(seconds, rows, "duckdb group-by scan of " + ", ".join(names))


def parquet_sources(landing_dir: Path) -> list[str]:
    """One `read_parquet(...)` source per landing table folder."""
    return [
        f"read_parquet('{d.as_posix()}/*.parquet')"
        for d in sorted(p for p in landing_dir.iterdir() if p.is_dir())
        if any(d.glob("*.parquet"))
    ]


def rewrite_floor(con: duckdb.DuckDBPyConnection, landing_dir: Path, repeats: int) -> Floor | None:
    """The generator's floor: DuckDB writing the same rows as Parquet (it has no input to scan)."""
    sources = parquet_sources(landing_dir)
    if not sources:
        return None
    rows = sum(int(con.execute(f"select count(*) from {s}").fetchall()[0][0]) for s in sources)
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:

        def rewrite() -> None:
            for i, source in enumerate(sources):
                con.execute(
                    f"copy (select * from {source}) to '{tmp}/{i}.parquet' (format parquet)"
                )

        seconds = best_of(repeats, rewrite)
    return Floor(seconds, rows, "duckdb rewrite of the generated Parquet")


def post_floor(url: str, path: str, bodies: Sequence[bytes], headers: dict[str, str]) -> float:
    """Post `bodies` one after another on one keep-alive connection; the seconds it took.

    Only loopback addresses are accepted: the benchmark never sends anywhere else.
    """
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"refusing to post the send floor to {parts.hostname!r}: loopback only")
    import time

    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        t0 = time.perf_counter()
        for body in bodies:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status >= 300:
                log.warning("send floor: %s %s -> HTTP %s", "POST", path, response.status)
        return time.perf_counter() - t0
    finally:
        conn.close()


def sendgrid_bodies(messages_frame) -> list[bytes]:
    """The request bodies the SendGrid provider posts for these outbound messages."""
    from tessera.activations.providers.base import messages_from_frame
    from tessera.activations.providers.sendgrid_email import SendGridProvider, build_mail_body

    provider = SendGridProvider(api_key="bench-key", from_email="bench@tessera.invalid")
    messages = messages_from_frame(messages_frame)
    return [
        json.dumps(build_mail_body(batch, provider.from_email)).encode()
        for batch in provider.plan_batches(messages)
    ]
