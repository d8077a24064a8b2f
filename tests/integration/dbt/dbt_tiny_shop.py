"""A hand-written landing shop for the dbt tests: every quarantine rule, offsets and a known answer."""

from __future__ import annotations

from pathlib import Path

import duckdb

#: Campaign date of the hand-computed example (a Monday).
AS_OF = "2025-06-02"

COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": (
        "customer_id", "email", "phone", "created_at", "country",
        "email_opt_in", "sms_opt_in", "first_name", "updated_at",
    ),
    "orders": ("order_id", "customer_id", "ordered_at", "amount", "currency", "status"),
    "order_items": ("order_id", "product_id", "category", "quantity", "unit_price"),
    "events": ("customer_id", "occurred_at", "event_type", "category"),
    "campaign_responses": (
        "message_id", "customer_id", "campaign_id", "channel", "event", "occurred_at", "revenue",
    ),
}  # fmt: skip

Row = tuple[str | None, ...]

#: Texts a float cast reads as NaN or +-infinity (1e309 overflows): none of them is a number.
NON_FINITE = ("NaN", "nan", "-nan", "Infinity", "-Infinity", "+inf", "inf", "1e309", "-1e309")

#: Each row: (the landed text..., expected quarantine reason or None, expected is_blocking).
CUSTOMERS: list[tuple[Row, str | None, bool]] = [
    (("c1", " Alice@Example.COM ", "+44 7700 900123", "2024-01-10T09:00:00", "GB", "true", "false", "Alice"), None, False),
    (("c2", "bob@example", "07700 900456", "2025-05-01 12:00:00+02:00", "gb", "yes", "1", "Bob"), "bad_email", False),
    (("c3", "carol@example.com", "", "2025-06-05T00:00:00", "US", "no", "no", None), None, False),
    (("c4", "dave@example.com", "555", "2025-06-01T23:59:59Z", "DE", "maybe", "0", None), "bad_phone", False),
    # The same customer again, identical after normalisation: a re-send, staged, not quarantined.
    (("c1", "alice@example.com", "+447700900123", "2024-01-10T09:00:00", "GB", "true", "false", "Alice"), None, False),
    # The same customer in the same file at the same (no) updated_at, but different: a conflict.
    (("c1", "alice@other.example", "+447700900123", "2024-01-10T09:00:00", "GB", "false", "false", "Alice"), "duplicate_key", True),
    (("", "nobody@example.com", "", "2024-01-10", "GB", "true", "true", None), "missing_key", True),
    (("c9", "c9@example.com", "", "yesterday", "GB", "true", "true", None), "unparseable_timestamp", True),
    (("c8", "c8@example.com", "", "2999-01-01T00:00:00", "GB", "true", "true", None), "future_timestamp", True),
]  # fmt: skip

ORDERS: list[tuple[Row, str | None, bool]] = [
    (("o1", "c1", "2025-05-30T10:00:00+02:00", "100.00", "EUR", "completed"), None, False),
    (("o2", "c1", "2025-03-01T10:00:00Z", "50", "EUR", "completed"), None, False),
    (("o3", "c1", "2024-06-15T00:30:00+01:00", "30", "EUR", "completed"), None, False),
    (("o4", "c1", "2025-06-01T20:00:00", "80", "EUR", "cancelled"), None, False),
    # 23:30 local at -02:00 is 01:30 UTC on the campaign date: not before as_of.
    (("o5", "c2", "2025-06-01T23:30:00-02:00", "40", "EUR", "Completed"), None, False),
    (("o1", "c1", "2025-05-30T10:00:00+02:00", "100.00", "EUR", "completed"), "duplicate_key", True),
    (("o6", "c99", "2025-05-01T10:00:00", "10", "EUR", "completed"), "unknown_customer", True),
    (("o7", "c1", "2025-05-01T10:00:00", "-5", "EUR", "completed"), "negative_amount", True),
    (("o8", "c1", "2025-05-01T10:00:00", "abc", "EUR", "completed"), "unparseable_number", True),
    (("o9", "c1", "2025-05-01T10:00:00", "12", "EUR", "shipped"), "invalid_status", True),
    (("o10", "c2", "not a date", "12", "EUR", "completed"), "unparseable_timestamp", True),
    *(
        ((f"o_nf{i}", "c1", "2025-05-01T10:00:00", text, "EUR", "completed"), "unparseable_number", True)
        for i, text in enumerate(NON_FINITE)
    ),
]  # fmt: skip

ORDER_ITEMS: list[tuple[Row, str | None, bool]] = [
    (("o1", "p1", "handbags", "1", "60"), None, False),
    (("o1", "p2", "Shoes", "2", "20"), None, False),
    (("o2", "p3", "shoes", "1", "50"), None, False),
    (("o3", "p4", "ski", "1", "30"), None, False),
    (("o4", "p5", "handbags", "1", "80"), None, False),
    (("o5", "p6", "beauty", "2", "20"), None, False),
    (("o99", "p7", "home", "1", "10"), "unknown_order", True),
    (("o1", "p8", "home", "-1", "10"), "negative_quantity", True),
    (("o6", "p1", "handbags", "1", "10"), "unknown_order", True),
    (("o1", "p1", "handbags", "1", "60"), "duplicate_key", True),
    *(
        ((f"o{1 + i % 2}", f"p_nf{i}", "home", text, "10"), "unparseable_number", True)
        for i, text in enumerate(NON_FINITE)
    ),
    *(
        ((f"o{1 + i % 2}", f"p_nf{i}", "home", "1", text), "unparseable_number", True)
        for i, text in enumerate(NON_FINITE)
    ),
]  # fmt: skip

EVENTS: list[tuple[Row, str | None, bool]] = [
    (("c1", "2025-06-01T09:00:00Z", "add_to_cart", "handbags"), None, False),
    (("c1", "2025-05-20T12:00:00Z", "add_to_cart", "shoes"), None, False),
    (("c1", "2025-05-31T08:00:00Z", "product_view", "handbags"), None, False),
    (("c1", "2025-05-31T08:01:00Z", "product_view", "handbags"), None, False),
    (("c1", "2025-05-31T08:02:00Z", "product_view", "shoes"), None, False),
    (("c1", "2025-05-28T07:00:00Z", "app_open", None), None, False),
    (("c1", "2025-05-27T07:00:00Z", "search", None), None, False),
    (("c1", "2025-04-01T07:00:00Z", "page_view", None), None, False),
    (("c2", "2025-06-01T10:00:00Z", "add_to_cart", "shoes"), None, False),
    (("c2", "2025-06-01T09:59:00Z", "product_view", "shoes"), None, False),
    (("c2", "2025-06-01T10:00:00Z", "click", "shoes"), "invalid_event_type", True),
    (("c99", "2025-06-01T10:00:00Z", "page_view", None), "unknown_customer", True),
    (("c1", "2025-05-27T07:00:00Z", "search", None), "duplicate_key", True),
]  # fmt: skip

CAMPAIGN_RESPONSES: list[tuple[Row, str | None, bool]] = [
    (("m1", "c1", "camp1", "email", "delivered", "2025-05-10T08:00:00Z", None), None, False),
    (("m1", "c1", "camp1", "email", "open", "2025-05-10T09:00:00Z", None), None, False),
    (("m1", "c1", "camp1", "email", "click", "2025-05-10T09:05:00Z", None), None, False),
    (("m1", "c1", "camp1", "email", "conversion", "2025-05-11T10:00:00Z", "25.50"), None, False),
    (("m2", "c2", "camp1", "email", "bounce", "2025-05-15T08:00:00Z", None), None, False),
    (("m4", "c1", "camp2", "email", "delivered", "2024-12-01T08:00:00Z", None), None, False),
    (("m3", "c1", "camp2", "fax", "delivered", "2025-05-12T08:00:00Z", None), "invalid_channel", True),
    (("m1", "c1", "camp1", "email", "open", "2025-05-10T09:00:00Z", None), "duplicate_key", True),
    *(
        ((f"m_nf{i}", "c1", "camp1", "email", "conversion", "2025-05-11T10:00:00Z", text), "unparseable_number", True)
        for i, text in enumerate(NON_FINITE)
    ),
]  # fmt: skip

TABLES: dict[str, list[tuple[Row, str | None, bool]]] = {
    "customers": CUSTOMERS,
    "orders": ORDERS,
    "order_items": ORDER_ITEMS,
    "events": EVENTS,
    "campaign_responses": CAMPAIGN_RESPONSES,
}

#: Rows dated at or after AS_OF (offsets included): appending them must not change features for AS_OF.
LATE_ROWS: dict[str, list[Row]] = {
    "orders": [
        ("o20", "c1", "2025-06-02T00:00:00Z", "500", "EUR", "completed"),
        ("o21", "c2", "2025-06-01T23:30:00-01:00", "70", "EUR", "completed"),
    ],
    "order_items": [("o20", "p9", "ski", "3", "100"), ("o21", "p1", "handbags", "1", "70")],
    "events": [
        ("c1", "2025-06-02T00:00:00Z", "add_to_cart", "ski"),
        ("c4", "2025-06-01T23:00:00-03:00", "app_open", None),
    ],
    "campaign_responses": [
        ("m9", "c1", "camp3", "sms", "unsubscribe", "2025-06-02T00:00:00Z", None),
        ("m9", "c2", "camp3", "email", "spam_report", "2025-06-02T06:00:00Z", None),
    ],
}


#: Tables whose raw rows also carry the landing file's modification time (orchestration/landing.py).
VERSIONED = {"customers"}
#: The modification time of the tiny shop's files.
LANDED_AT = "2025-06-01 12:00:00"


def create_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create empty raw.<table> tables as the landing loader does: text columns + provenance."""
    con.execute("create schema if not exists raw")
    for table, columns in COLUMNS.items():
        cols = ", ".join(f"{c} varchar" for c in columns)
        extra = ", _source_modified_at timestamp" if table in VERSIONED else ""
        con.execute(
            f"create table raw.{table} ({cols}, _source_file varchar, _source_row bigint{extra})"
        )


def append_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    rows: list[Row],
    source_file: str,
    modified_at: str = LANDED_AT,
) -> None:
    """Append landed rows as if they came from one more file (short rows: trailing NULLs)."""
    width = len(COLUMNS[table])
    extra = (modified_at,) if table in VERSIONED else ()
    placeholders = ", ".join("?" for _ in range(width + 2 + len(extra)))
    con.executemany(
        f"insert into raw.{table} values ({placeholders})",
        [
            (*row, *([None] * (width - len(row))), source_file, i, *extra)
            for i, row in enumerate(rows, start=1)
        ],
    )


def write_tiny_shop(database: Path) -> None:
    """Create the warehouse file with raw tables holding the tiny shop."""
    with duckdb.connect(str(database)) as con:
        create_raw_tables(con)
        for table, rows in TABLES.items():
            append_rows(con, table, [row for row, _, _ in rows], f"{table}/part-0.csv")
