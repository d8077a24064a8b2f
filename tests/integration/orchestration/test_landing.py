"""Landing files -> raw schema: lossless, traceable, all-or-nothing, clear errors."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.landing import CONTRACT, LandingError, load_landing

CUSTOMERS = (
    "customer_id,email,phone,created_at,country,email_opt_in,sms_opt_in\n"
    "C1,a@example.com,+4915100000001,2025-01-01T09:00:00+01:00,DE,true,false\n"
    "C2,b@example.com,,2025-01-02T10:00:00+00:00,FR,false,false\n"
)
ORDERS = (
    "order_id,customer_id,ordered_at,amount,currency,status\n"
    "O1,C1,2025-02-01T10:00:00+00:00,10.50,EUR,completed\n"
)
ITEMS = "order_id,product_id,category,quantity,unit_price\nO1,SKI-1,ski,1,10.50\n"
EVENTS = "customer_id,occurred_at,event_type,category\nC1,2025-01-05 10:00:00,page_view,\n"


def write_shop(root: Path) -> Path:
    landing = root / "landing"
    for table, text in {
        "customers": CUSTOMERS,
        "orders": ORDERS,
        "order_items": ITEMS,
        "events": EVENTS,
    }.items():
        (landing / table).mkdir(parents=True)
        (landing / table / "part-0.csv").write_text(text)
    return landing


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return write_shop(tmp_path)


@pytest.fixture
def con(tmp_path: Path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as c:
        yield c


def test_rows_land_as_text_with_their_file_and_row(landing: Path, con) -> None:
    loads = load_landing(con, landing)
    assert {t: loads[t].rows for t in CONTRACT} == {
        "customers": 2,
        "orders": 1,
        "order_items": 1,
        "events": 1,
        "campaign_responses": 0,
        "suppressions": 0,
    }
    rows = con.execute(
        "select customer_id, created_at, first_name, _source_file, _source_row "
        "from raw.customers order by _source_row"
    ).fetchall()
    # The offset stays as written: normalising time zones is staging's job, not the loader's.
    assert rows[0] == ("C1", "2025-01-01T09:00:00+01:00", None, "customers/part-0.csv", 1)
    assert rows[1][4] == 2


def test_parquet_and_csv_files_of_one_table_are_combined(landing: Path, con) -> None:
    pd.DataFrame(
        {
            "customer_id": ["C2"],
            "occurred_at": pd.to_datetime(["2025-01-06 08:00:00"]),
            "event_type": ["app_open"],
            "category": [None],
        }
    ).to_parquet(landing / "events" / "part-1.parquet")
    load_landing(con, landing)
    got = con.execute(
        "select customer_id, occurred_at, _source_file from raw.events order by customer_id"
    ).fetchall()
    assert got == [
        ("C1", "2025-01-05 10:00:00", "events/part-0.csv"),
        ("C2", "2025-01-06 08:00:00", "events/part-1.parquet"),
    ]


def test_missing_landing_folder_names_the_folder(tmp_path: Path, con) -> None:
    with pytest.raises(LandingError, match=r"landing folder not found"):
        load_landing(con, tmp_path / "nowhere")


def test_missing_table_names_the_table(landing: Path, con) -> None:
    for f in (landing / "orders").iterdir():
        f.unlink()
    with pytest.raises(LandingError, match=r"orders: no landing files for table 'orders'"):
        load_landing(con, landing)


def test_wrong_header_names_file_and_missing_column(landing: Path, con) -> None:
    (landing / "orders" / "part-0.csv").write_text(ORDERS.replace("customer_id", "client_id", 1))
    with pytest.raises(LandingError) as err:
        load_landing(con, landing)
    assert "orders/part-0.csv" in str(err.value)
    assert "missing column(s) customer_id" in str(err.value)


def test_empty_file_is_an_error_not_an_empty_table(landing: Path, con) -> None:
    (landing / "order_items" / "part-0.csv").write_text("")
    with pytest.raises(LandingError, match=r"order_items/part-0.csv: the file is empty"):
        load_landing(con, landing)


def test_truncated_parquet_names_the_file(landing: Path, con) -> None:
    (landing / "events" / "bad.parquet").write_bytes(b"PAR1\x00\x00garbage")
    with pytest.raises(LandingError, match=r"events/bad.parquet: cannot be read as parquet"):
        load_landing(con, landing)


def test_non_utf8_csv_names_the_file_and_line(landing: Path, con) -> None:
    (landing / "orders" / "part-0.csv").write_bytes(
        ORDERS.encode() + b"O2,C1,2025-02-02T10:00:00+00:00,5\xff,EUR,completed\n"
    )
    with pytest.raises(LandingError) as err:
        load_landing(con, landing)
    assert "orders/part-0.csv" in str(err.value)
    assert "utf-8" in str(err.value).lower()


def test_a_bad_file_leaves_the_previous_raw_tables_untouched(landing: Path, con) -> None:
    load_landing(con, landing)
    before = con.execute("select count(*) from raw.customers").fetchall()
    (landing / "customers" / "part-1.csv").write_text(CUSTOMERS.replace("C1,", "C3,"))
    (landing / "events" / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(LandingError):
        load_landing(con, landing)
    assert con.execute("select count(*) from raw.customers").fetchall() == before


def test_extra_columns_are_ignored_and_reported(landing: Path, con) -> None:
    (landing / "events" / "part-0.csv").write_text(
        "customer_id,occurred_at,event_type,category,user_agent\nC1,2025-01-05,search,,curl\n"
    )
    loads = load_landing(con, landing)
    assert loads["events"].ignored_columns == {"part-0.csv": ["user_agent"]}


def test_temporary_files_of_writers_are_not_read(landing: Path, con) -> None:
    (landing / "events" / ".part-9.parquet.tmp.csv").write_text("garbage")
    (landing / "events" / "_incoming.csv").write_text("garbage")
    assert load_landing(con, landing)["events"].rows == 1
