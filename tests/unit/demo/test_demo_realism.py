"""The demo shop behaves like a shop a modeller would recognise."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .conftest import END, utc


def _orders(shop) -> pd.DataFrame:
    o = shop.orders.drop_duplicates()
    return o.assign(ts=utc(o.ordered_at))


def test_customers_keep_joining_at_a_growing_rate(shop):
    created = utc(shop.customers.created_at)
    after_launch = created[created >= created.min() + pd.Timedelta(days=7)]
    first_year = (after_launch < pd.Timestamp("2024-11-01", tz="UTC")).sum()
    second_year = len(after_launch) - first_year
    assert 0.1 < 1 - len(after_launch) / len(created) < 0.3  # the launch base
    assert second_year > 1.15 * first_year
    assert created.dt.tz_localize(None).dt.to_period("M").nunique() == 24


def test_purchase_counts_are_overdispersed_with_one_time_and_never_buyers(shop):
    counts = _orders(shop).groupby("customer_id").size()
    counts = counts.reindex(shop.customers.customer_id, fill_value=0)
    buyers = counts[counts > 0]
    assert 0.15 < (counts == 0).mean() < 0.5
    assert 0.2 < (buyers == 1).mean() < 0.65
    assert 3 < buyers.mean() < 9
    assert buyers.var() > 5 * buyers.mean()
    assert buyers.max() > 10 * buyers.median()


def test_items_per_order_and_basket_values_are_skewed(shop):
    per_order = shop.order_items.groupby("order_id").size()
    assert per_order.between(1, 4).all() and 1.3 < per_order.mean() < 1.8
    amounts = _orders(shop).amount
    assert amounts.mean() > 1.3 * amounts.median()
    truth = shop.truth.set_index("customer_id")
    spend = _orders(shop).groupby("customer_id").amount.mean()
    rich = truth.mean_basket_value.reindex(spend.index)
    assert np.corrcoef(np.log(rich), np.log(spend))[0, 1] > 0.3


def test_december_and_black_friday_sell_more_than_an_average_day(shop):
    o = _orders(shop)
    year = o[(o.ts >= pd.Timestamp("2024-11-01", tz="UTC"))]
    daily = year.groupby(year.ts.dt.date).size()
    avg = len(year) / 365
    december = daily[[d.month == 12 and d.day <= 20 for d in daily.index]].mean()
    assert december > 1.25 * avg
    bf = pd.Timestamp("2024-11-29").date()
    assert daily.get(bf, 0) > 2 * avg
    weekend = o.ts.dt.weekday >= 5
    assert weekend.mean() > 2 / 7 * 1.1


def test_ski_sells_in_winter_not_summer(shop):
    items = shop.order_items.merge(_orders(shop)[["order_id", "ts"]].drop_duplicates("order_id"))
    month = items.ts.dt.month
    is_ski = items.category.eq("ski")
    assert is_ski[month.isin([12, 1, 2])].mean() > 3 * is_ski[month.isin([6, 7, 8])].mean()


def test_product_views_and_carts_cluster_before_orders(shop):
    o = _orders(shop)[["customer_id", "ts"]].sort_values("ts")
    carts = shop.events[shop.events.event_type == "add_to_cart"].sort_values("occurred_at")
    nxt = pd.merge_asof(
        carts, o, left_on="occurred_at", right_on="ts", by="customer_id", direction="forward"
    )
    gap = (nxt.ts - nxt.occurred_at).dt.total_seconds()
    converted = gap <= 3600
    assert 0.3 < converted.mean() < 0.9  # many carts lead to an order, some are abandoned
    events_per_customer = len(shop.events) / len(shop.customers)
    assert 30 < events_per_customer < 100


def test_browsing_fades_in_the_weeks_before_the_latent_dropout(shop):
    truth, events = shop.truth, shop.events
    end = pd.Timestamp(END, tz="UTC")
    day = pd.Timedelta(days=1)
    long_lived = truth.signup_at < truth.churn_at.fillna(end) - 150 * day
    churned = truth[long_lived & truth.churn_at.notna()].assign(ref=lambda d: d.churn_at)
    alive = truth[long_lived & truth.churn_at.isna()].assign(ref=end)

    def late_over_early(group: pd.DataFrame) -> float:
        x = events.merge(group[["customer_id", "ref"]], on="customer_id")
        age = (x.ref - x.occurred_at) / day
        late = ((age > 0) & (age <= 21)).sum() / 21
        early = ((age > 90) & (age <= 150)).sum() / 60
        return late / early

    assert len(churned) > 100 and len(alive) > 100
    assert late_over_early(churned) < 0.75 * late_over_early(alive)


def test_newsletter_history_has_realistic_rates_and_stops_after_unsubscribe(shop):
    r = shop.campaign_responses
    counts = r.event.value_counts()
    delivered = counts["delivered"]
    assert 0.12 < counts["open"] / delivered < 0.35
    assert 0.005 < counts["click"] / delivered < 0.06
    assert counts["unsubscribe"] / delivered < 0.01
    opted_out = set(shop.customers.customer_id[~shop.customers.email_opt_in])
    assert not set(r.customer_id) & opted_out
    stops = r[r.event.isin(["unsubscribe", "bounce", "spam_report"])]
    first_stop = stops.groupby("customer_id").campaign_id.min()
    later = r.merge(first_stop.rename("stop").reset_index(), on="customer_id")
    assert (later.campaign_id <= later.stop).all()
