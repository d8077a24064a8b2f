"""Landing files -> raw schema: lossless, traceable, all-or-nothing, clear errors."""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tessera.warehouse.landing import CONTRACT, LandingError, load_landing

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
        "external_contacts": 0,
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


def test_hidden_files_are_not_read(landing: Path, con) -> None:
    # Writers' temporary files before their atomic rename, and Finder's .DS_Store.
    (landing / "events" / ".part-9.parquet.tmp.csv").write_text("garbage")
    (landing / "events" / ".DS_Store").write_bytes(b"\x00\x01")
    assert load_landing(con, landing)["events"].rows == 1


def test_a_csv_whose_name_starts_with_an_underscore_is_loaded(landing: Path, con) -> None:
    (landing / "events" / "_late.csv").write_text(EVENTS.replace("C1,", "C2,"))
    load_landing(con, landing)
    got = con.execute("select customer_id, _source_file from raw.events order by 1").fetchall()
    assert got == [("C1", "events/part-0.csv"), ("C2", "events/_late.csv")]


def test_gzipped_csv_is_loaded(landing: Path, con) -> None:
    with gzip.open(landing / "events" / "part-1.csv.gz", "wt") as f:
        f.write(EVENTS.replace("C1,", "C2,"))
    load_landing(con, landing)
    got = con.execute("select customer_id, _source_file from raw.events order by 1").fetchall()
    assert got == [("C1", "events/part-0.csv"), ("C2", "events/part-1.csv.gz")]


@pytest.mark.parametrize("name", ["p*.csv", "[a].csv", "p?rt-0.csv", "**.csv"])
def test_file_names_are_literal_not_glob_patterns(landing: Path, con, name: str) -> None:
    (landing / "events" / "a.csv").write_text(EVENTS.replace("C1,", "C3,"))
    (landing / "events" / name).write_text(EVENTS.replace("C1,", "C2,"))
    load_landing(con, landing)
    got = con.execute("select customer_id, _source_file from raw.events order by 1").fetchall()
    assert got == [
        ("C1", "events/part-0.csv"),
        ("C2", f"events/{name}"),
        ("C3", "events/a.csv"),
    ]


def test_a_landing_folder_with_glob_characters_is_read_literally(tmp_path: Path, con) -> None:
    landing = write_shop(tmp_path / "shop[1]*")
    assert load_landing(con, landing)["customers"].rows == 2


@pytest.mark.parametrize("name", ["part-1.tsv", "part-1.txt", "part-1.csv.zip", "notes"])
def test_a_file_that_is_not_loadable_is_named_in_an_error(landing: Path, con, name: str) -> None:
    (landing / "orders" / name).write_text(ORDERS)
    with pytest.raises(LandingError, match=rf"orders/{re.escape(name)}: not a loadable file"):
        load_landing(con, landing)


def test_a_sub_folder_in_a_table_folder_is_named_in_an_error(landing: Path, con) -> None:
    (landing / "orders" / "2025").mkdir()
    (landing / "orders" / "2025" / "part-1.csv").write_text(ORDERS)
    with pytest.raises(LandingError, match=r"orders/2025: not a loadable file"):
        load_landing(con, landing)


@pytest.mark.parametrize("name", ["customers.csv", "customers.parquet", "customers.tsv"])
def test_a_table_file_beside_its_folder_is_an_error(landing: Path, con, name: str) -> None:
    (landing / name).write_text(CUSTOMERS)
    with pytest.raises(
        LandingError, match=rf"{re.escape(name)}: a file for table 'customers' beside"
    ):
        load_landing(con, landing)


def test_a_single_table_file_without_a_folder_is_loaded(landing: Path, con) -> None:
    for f in (landing / "orders").iterdir():
        f.unlink()
    (landing / "orders").rmdir()
    (landing / "orders.csv").write_text(ORDERS)
    load_landing(con, landing)
    assert con.execute("select _source_file from raw.orders").fetchall() == [("orders.csv",)]


def test_non_utf8_byte_deep_in_a_file_names_the_file(landing: Path, con) -> None:
    load_landing(con, landing)
    before = con.execute("select count(*) from raw.orders").fetchall()
    good = "".join(
        f"O{i},C1,2025-02-01T10:00:00+00:00,10.50,EUR,completed\n" for i in range(2, 30_000)
    )
    (landing / "orders" / "part-1.csv").write_text(ORDERS + good)
    (landing / "orders" / "part-2.csv").write_bytes(
        (ORDERS + good).encode() + b"O9,C1,2025-02-02T10:00:00+00:00,5\xff,EUR,completed\n"
    )
    with pytest.raises(LandingError) as err:
        load_landing(con, landing)
    message = str(err.value)
    assert message.startswith(str(landing / "orders" / "part-2.csv") + ":")
    assert "utf-8" in message.lower()
    # All or nothing: the failed load wrote nothing.
    assert con.execute("select count(*) from raw.orders").fetchall() == before


def test_customer_rows_carry_their_files_modification_time(landing: Path, con) -> None:
    update = landing / "customers" / "update-2025-06-03.csv"
    update.write_text(
        "customer_id,email,phone,created_at,country,email_opt_in,sms_opt_in,updated_at\n"
        "C1,a@example.com,,2025-01-01T09:00:00+01:00,DE,false,false,2025-06-03T10:00:00Z\n"
    )
    stamp = 1_748_944_800  # 2025-06-03 10:00:00 UTC
    os.utime(update, (stamp, stamp))
    load_landing(con, landing)
    rows = con.execute(
        "select _source_file, updated_at, cast(_source_modified_at as varchar) "
        "from raw.customers order by _source_file, _source_row"
    ).fetchall()
    assert rows[-1] == (
        "customers/update-2025-06-03.csv",
        "2025-06-03T10:00:00Z",
        "2025-06-03 10:00:00",
    )
    # updated_at is optional: files without it load with NULLs.
    assert rows[0][1] is None


def _collector_post(data_dir: Path) -> None:
    """One page view through the journeys' collector, which writes landing/events/."""
    import json

    from tessera.journeys.intake import TrackReceiver

    key = "shop-key-0123456789abcdef"
    body = {"events": [{"event_id": "e1", "customer_id": "C2", "type": "page_view",
                        "timestamp": "2025-01-06T10:00:00Z"}]}  # fmt: skip
    status, reply = TrackReceiver(data_dir, {"web": key}).handle(
        json.dumps(body).encode(), {"Authorization": f"Bearer {key}"}
    )
    assert (status, reply["accepted"]) == (200, 1)


def _events_as_one_file(landing: Path) -> None:
    (landing / "events" / "part-0.csv").unlink()
    (landing / "events").rmdir()
    (landing / "events.csv").write_text(EVENTS)


def test_a_single_events_csv_is_loaded(landing: Path, con) -> None:
    _events_as_one_file(landing)
    load_landing(con, landing)
    assert con.execute("select customer_id, _source_file from raw.events").fetchall() == [
        ("C1", "events.csv")
    ]


def test_the_collectors_events_folder_is_loaded_with_its_batch_files(tmp_path: Path, con) -> None:
    landing = write_shop(tmp_path)
    (landing / "events" / "part-0.csv").unlink()
    _collector_post(tmp_path)
    load_landing(con, landing)
    rows = con.execute("select customer_id, _source_file from raw.events").fetchall()
    assert [r[0] for r in rows] == ["C2"]
    assert rows[0][1].startswith("events/") and rows[0][1].endswith(".parquet")


def test_events_csv_beside_the_collectors_events_folder_names_both(tmp_path: Path, con) -> None:
    landing = write_shop(tmp_path)
    _events_as_one_file(landing)
    _collector_post(tmp_path)
    with pytest.raises(LandingError) as err:
        load_landing(con, landing)
    message = str(err.value)
    assert str(landing / "events.csv") in message
    assert str(landing / "events") in message
    assert "move it into the folder" in message
