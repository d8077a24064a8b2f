"""The demo shop writes exactly the landing contract of docs/data-model.md."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq

from .conftest import END, START, utc

CONTRACT = {
    "customers": [
        "customer_id", "email", "phone", "created_at", "country", "email_opt_in",
        "sms_opt_in", "first_name",
    ],
    "orders": ["order_id", "customer_id", "ordered_at", "amount", "currency", "status"],
    "order_items": ["order_id", "product_id", "category", "quantity", "unit_price"],
    "events": ["customer_id", "occurred_at", "event_type", "category"],
    "campaign_responses": [
        "message_id", "customer_id", "campaign_id", "channel", "event", "occurred_at", "revenue",
    ],
}  # fmt: skip
CATEGORIES = {"handbags", "shoes", "ski", "outdoor", "electronics", "beauty", "home", "apparel"}
ISO_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$"


def test_every_table_has_exactly_the_contract_columns_in_part_files(shop):
    for table, columns in CONTRACT.items():
        paths = shop.summary.paths[table]
        assert [p.name for p in paths] == ["part-00000.parquet"]
        assert pq.read_schema(paths[0]).names == columns, table
        assert shop.summary.rows[table] == len(getattr(shop, table)) > 0


def test_column_types_follow_the_contract(shop):
    c, o, i, e, r = (
        shop.customers,
        shop.orders,
        shop.order_items,
        shop.events,
        shop.campaign_responses,
    )
    assert c.email_opt_in.dtype == bool and c.sms_opt_in.dtype == bool
    assert o.amount.dtype == "float64" and i.unit_price.dtype == "float64"
    assert i.quantity.dtype == "int64" and (i.quantity >= 1).all()
    assert r.revenue.dtype == "float64"
    assert str(e.occurred_at.dtype) == "datetime64[us, UTC]"
    for frame, col in ((c, "created_at"), (o, "ordered_at"), (r, "occurred_at")):
        assert frame[col].str.match(ISO_WITH_OFFSET).all(), col


def test_ids_and_codes_have_the_documented_shapes(shop):
    assert shop.customers.customer_id.str.match(r"^C\d{7}$").all()
    assert shop.customers.customer_id.is_unique
    assert shop.order_items.product_id.str.match(r"^[A-Z]{3}-\d{4}$").all()
    assert set(shop.order_items.category) == CATEGORIES
    assert set(shop.orders.status) == {"completed", "cancelled", "refunded"}
    assert set(shop.orders.currency) == {"EUR", "GBP", "USD"}
    assert shop.orders.currency.value_counts(normalize=True)["EUR"] > 0.75
    assert set(shop.events.event_type) == {
        "page_view", "product_view", "add_to_cart", "search", "app_open",
    }  # fmt: skip
    assert set(shop.events.category.dropna()) <= CATEGORIES
    assert shop.events.category.isna().any()
    r = shop.campaign_responses
    assert set(r.channel) == {"email"}
    assert r.campaign_id.str.match(r"^newsletter_\d{4}_\d{2}$").all()
    assert set(r.event) == {
        "delivered", "open", "click", "bounce", "unsubscribe", "spam_report", "conversion",
    }  # fmt: skip
    assert r.revenue.notna().eq(r.event.eq("conversion")).all()
    assert (r.revenue.dropna() > 0).all()


def test_order_amount_is_the_sum_of_its_items_in_cents(shop):
    items = shop.order_items.assign(line=lambda d: d.unit_price * d.quantity)
    total = items.groupby("order_id").line.sum().round(2)
    orders = shop.orders.drop_duplicates().set_index("order_id")
    assert (orders.amount.round(2) == orders.amount).all()
    pd.testing.assert_series_equal(
        orders.amount.sort_index(), total.reindex(orders.index).sort_index(), check_names=False
    )


def test_every_reference_points_to_a_known_customer_or_order(shop):
    ids = set(shop.customers.customer_id)
    for frame in (shop.orders, shop.events, shop.campaign_responses):
        assert set(frame.customer_id) <= ids
    assert set(shop.order_items.order_id) == set(shop.orders.order_id)


def test_no_timestamp_at_or_after_end_nor_before_start(shop):
    lo, hi = pd.Timestamp(START, tz="UTC"), pd.Timestamp(END, tz="UTC")
    for stamps in (
        utc(shop.customers.created_at),
        utc(shop.orders.ordered_at),
        utc(shop.campaign_responses.occurred_at),
        shop.events.occurred_at,
    ):
        assert stamps.min() >= lo and stamps.max() < hi


def test_activity_never_precedes_the_customers_signup(shop):
    created = utc(shop.customers.set_index("customer_id").created_at)
    orders = shop.orders.assign(ts=utc(shop.orders.ordered_at))
    assert (orders.ts >= created.reindex(orders.customer_id).to_numpy()).all()
    assert (shop.events.occurred_at >= created.reindex(shop.events.customer_id).to_numpy()).all()


def test_contact_fields_look_real(shop):
    c = shop.customers
    valid = c.email.str.strip().str.lower().str.match(r"^[a-z0-9.]+@[a-z0-9.-]+\.[a-z]+$")
    assert valid.mean() > 0.95
    assert c.phone.dropna().str.match(r"^\+\d{9,13}$").mean() > 0.95
    assert 0.6 < c.email_opt_in.mean() < 0.8 and 0.25 < c.sms_opt_in.mean() < 0.45
    assert c.first_name.notna().all()
    assert c.country.nunique() >= 8
