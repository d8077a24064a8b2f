"""Dirty rows at the configured rate, determinism, chunking and atomic writing."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow.parquet as pq
import pytest

import tessera.demo.generator as demo
from tessera.demo.generator import DemoShopError, generate_shop

from .conftest import utc

SMALL = {"customers": 500, "start": dt.date(2024, 6, 1), "end": dt.date(2025, 6, 1)}


def _invalid_email(email: pd.Series) -> pd.Series:
    normal = email.str.strip().str.lower()
    return ~normal.str.match(r"^[a-z0-9.]+@[a-z0-9.-]+\.[a-z]+$").fillna(False)


def test_dirty_rows_appear_at_about_the_configured_rate(shop):
    orders = shop.orders
    n = orders.order_id.nunique()
    duplicates = orders.duplicated().sum()
    assert orders.duplicated(subset="order_id").sum() == duplicates  # exact copies only
    assert 0.01 * n < duplicates < 0.03 * n
    unique = orders.drop_duplicates()
    assert 0.01 < unique.status.ne("completed").mean() < 0.03
    shifted = unique.ordered_at.str[-6:] != "+00:00"
    assert 0.01 < shifted.mean() < 0.03
    c = shop.customers
    assert 0.01 < _invalid_email(c.email).mean() < 0.035
    fixable = (c.email != c.email.str.strip().str.lower()) & ~_invalid_email(c.email)
    assert 0.01 < fixable.mean() < 0.035
    bad_phone = ~c.phone.dropna().str.match(r"^\+\d{9,13}$")
    assert 0.01 < bad_phone.mean() < 0.035


def test_timezone_shifted_orders_are_the_same_instant_in_local_clock_time(shop):
    o = shop.orders.drop_duplicates()
    shifted = o[o.ordered_at.str[-6:] != "+00:00"]
    text = shifted.ordered_at
    local = text.str[11:13].astype(int) * 60 + text.str[14:16].astype(int)
    at = utc(text)
    sign = text.str[-6].map({"+": 1, "-": -1})
    offset = sign * (text.str[-5:-3].astype(int) * 60 + text.str[-2:].astype(int))
    assert ((at.dt.hour * 60 + at.dt.minute + offset) % 1440 == local).all()
    assert (offset != 0).all()


def test_invalid_addresses_bounce_in_the_newsletter_history(shop):
    invalid = shop.customers.customer_id[_invalid_email(shop.customers.email)]
    r = shop.campaign_responses
    bounced = set(r.customer_id[r.event == "bounce"])
    received = set(r.customer_id) & set(invalid)
    assert received and len(received & bounced) / len(received) > 0.8


def test_a_clean_shop_has_no_dirty_rows(clean_shop):
    o, c = clean_shop.orders, clean_shop.customers
    assert not o.duplicated("order_id").any()
    assert set(o.status) == {"completed"}
    assert (o.ordered_at.str[-6:] == "+00:00").all()
    assert c.email.notna().all() and not _invalid_email(c.email).any()
    assert (c.email == c.email.str.strip().str.lower()).all()
    assert c.phone.dropna().str.match(r"^\+\d{9,13}$").all()


def test_same_arguments_give_identical_files_and_truth(tmp_path):
    a = generate_shop(tmp_path / "a" / "landing", seed=3, **SMALL)
    b = generate_shop(tmp_path / "b" / "landing", seed=3, **SMALL)
    for table in demo.TABLES:
        for pa_, pb in zip(a.paths[table], b.paths[table], strict=True):
            assert pq.read_table(pa_).equals(pq.read_table(pb)), table
            assert pa_.read_bytes() == pb.read_bytes(), table
    assert pq.read_table(a.ground_truth_path).equals(pq.read_table(b.ground_truth_path))


def test_different_seeds_give_different_shops(tmp_path):
    a = generate_shop(tmp_path / "a" / "landing", seed=3, **SMALL)
    b = generate_shop(tmp_path / "b" / "landing", seed=4, **SMALL)
    assert not pq.read_table(a.paths["orders"][0]).equals(pq.read_table(b.paths["orders"][0]))
    ca, cb = (pd.read_parquet(s.paths["customers"][0]) for s in (a, b))
    assert (ca.created_at != cb.created_at).mean() > 0.9


def test_ground_truth_lives_outside_the_landing_folder(shop):
    out, truth = shop.summary.out_dir, shop.summary.ground_truth_path
    assert truth == out.parent / "ground_truth" / "customers.parquet"
    assert out not in truth.parents
    assert sorted(p.name for p in out.iterdir()) == sorted(demo.TABLES)
    assert not list(out.parent.glob(".*tmp*"))
    t = shop.truth
    assert list(t.customer_id) == list(shop.customers.customer_id)
    assert {"signup_at", "purchase_rate_per_day", "churn_at", "mean_basket_value"} <= set(t)
    assert t.churn_at.isna().any() and t.churn_at.notna().any()
    assert (t.churn_at.dropna() < pd.Timestamp("2025-11-01", tz="UTC")).all()
    assert t.favourite_categories.map(len).eq(2).all()


def test_chunks_have_unique_ids_and_do_not_depend_on_the_number_of_workers(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "CHUNK_SIZE", 200)
    s = generate_shop(tmp_path / "one" / "landing", seed=5, workers=1, **SMALL)
    two = generate_shop(tmp_path / "two" / "landing", seed=5, workers=2, **SMALL)
    assert [p.name for p in s.paths["orders"]] == [f"part-0000{k}.parquet" for k in range(3)]
    for table in demo.TABLES:
        for p1, p2 in zip(s.paths[table], two.paths[table], strict=True):
            assert p1.read_bytes() == p2.read_bytes(), table
    assert pq.read_table(s.ground_truth_path).equals(pq.read_table(two.ground_truth_path))
    customers = pd.read_parquet(s.out_dir / "customers")
    orders = pd.read_parquet(s.out_dir / "orders").drop_duplicates()
    assert customers.customer_id.is_unique and len(customers) == 500
    assert orders.order_id.is_unique
    assert len(pd.read_parquet(s.ground_truth_path)) == 500


def test_a_failed_run_leaves_the_existing_shop_untouched(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    first = generate_shop(landing, seed=1, **SMALL)
    before = {p: p.read_bytes() for t in demo.TABLES for p in first.paths[t]}
    monkeypatch.setattr(demo, "CHUNK_SIZE", 200)
    real = demo._generate_chunk

    def crash_on_second_chunk(k, *args, **kwargs):
        if k == 1:
            raise RuntimeError("killed")
        return real(k, *args, **kwargs)

    monkeypatch.setattr(demo, "_generate_chunk", crash_on_second_chunk)
    with pytest.raises(RuntimeError):
        generate_shop(landing, seed=2, workers=1, **SMALL)
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ground_truth", "landing"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"customers": 0}, "customers"),
        ({"start": dt.date(2025, 6, 1)}, "before"),
        ({"dirty_rate": 0.5}, "dirty_rate"),
    ],
)
def test_impossible_arguments_are_refused(tmp_path, kwargs, message):
    args = {**SMALL, "seed": 1, **kwargs}
    with pytest.raises(DemoShopError, match=message):
        generate_shop(tmp_path / "landing", **args)
    assert not (tmp_path / "landing").exists()
