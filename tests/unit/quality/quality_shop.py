"""Helpers for the quality unit tests: a tiny clean shop as landed text, and a way to dirty it."""

from __future__ import annotations

import duckdb

RAW_COLUMNS = {
    "customers": "customer_id, email, phone, created_at, country, email_opt_in, sms_opt_in, "
    "updated_at, first_name",
    "orders": "order_id, customer_id, ordered_at, amount, currency, status",
    "order_items": "order_id, product_id, category, quantity, unit_price",
    "events": "customer_id, occurred_at, event_type, category",
    "campaign_responses": "message_id, customer_id, campaign_id, channel, event, occurred_at",
}

CLEAN = {
    "customers": [
        ("c1", "ann@example.com", "+49 170 1234567", "2025-01-01T09:00:00", "DE", "true", "false"),
        ("c2", "bob@example.com", "+33 6 12 34 56 78", "2025-02-01 10:00:00", "FR", "yes", "no"),
        ("c3", "cy@example.com", "+44 7700 900123", "2025-03-01T00:00:00+01:00", "GB", "1", "0"),
    ],
    "orders": [
        ("o1", "c1", "2025-04-01T10:00:00", "12.50", "EUR", "completed"),
        ("o2", "c2", "2025-04-02T11:00:00+02:00", "99", "EUR", "refunded"),
        ("o3", "c3", "2025-04-03T12:00:00", "0", "GBP", "cancelled"),
    ],
    "order_items": [
        ("o1", "p1", "shoes", "1", "12.50"),
        ("o2", "p2", "ski", "2", "49.50"),
        ("o3", "p3", "home", "1", "0"),
    ],
    "events": [
        ("c1", "2025-05-30T10:00:00", "page_view", "shoes"),
        ("c2", "2025-05-31T23:00:00", "add_to_cart", "ski"),
        ("c3", "2025-06-01T08:00:00", "app_open", None),
    ],
    "campaign_responses": [
        ("m1", "c1", "welcome", "email", "delivered", "2025-05-01T10:00:00"),
        ("m1", "c1", "welcome", "email", "open", "2025-05-01T11:00:00"),
    ],
}

NOW = "2025-06-15 00:00:00"


def add_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    rows: list[tuple],
    source_file: str | None = None,
) -> None:
    """Append landed rows (text as landed; short rows get trailing NULLs, e.g. no updated_at)
    with a source file and 1-based row numbers."""
    start = con.execute(f"select count(*) from raw.{table}").fetchall()[0][0]
    width = len(RAW_COLUMNS[table].split(","))
    marks = ", ".join(["?"] * (width + 2))
    source_file = source_file or f"{table}/part-0.csv"
    for i, row in enumerate(rows, start=start + 1):
        padded = [*row, *([None] * (width - len(row)))]
        con.execute(f"insert into raw.{table} values ({marks})", [*padded, source_file, i])


def clean_shop() -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse whose raw schema holds a small, clean shop."""
    con = duckdb.connect()
    con.execute("create schema raw")
    for table, cols in RAW_COLUMNS.items():
        typed = ", ".join(f"{c.strip()} varchar" for c in cols.split(","))
        con.execute(f"create table raw.{table} ({typed}, _source_file varchar, _source_row bigint)")
        add_rows(con, table, CLEAN[table])
    return con
