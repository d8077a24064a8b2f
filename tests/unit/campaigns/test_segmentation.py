"""Micro-segmentation: total bucketing, target groups over features, scores and buckets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tessera.campaigns.catalog import load_catalog
from tessera.campaigns.segmentation import segment_customers

DEMO = load_catalog(
    Path(__file__).resolve().parents[3] / "src" / "tessera" / "campaigns" / "catalog.yml"
)
D = dt.date(2025, 3, 3)


def customers(n: int, seed: int = 0, null_share: float = 0.2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)

    def maybe_null(values):
        values = pd.Series(values, dtype="Float64")
        values[rng.random(n) < null_share] = pd.NA
        return values

    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "tenure_days": rng.integers(0, 900, n),
            "events_30d": rng.integers(0, 40, n),
            "revenue_365d": maybe_null(rng.gamma(1.0, 300, n)),
            "revenue_total": rng.gamma(1.0, 600, n),
            "orders_365d": rng.integers(0, 8, n),
            "orders_total": rng.integers(0, 12, n),
            "top_category": rng.choice(["ski", "handbags", "toys", None], n),
            "top_viewed_category_30d": rng.choice(["ski", "handbags", None], n),
            "opens_90d": maybe_null(rng.integers(0, 6, n)),
            "clv_12m": maybe_null(rng.gamma(1.0, 200, n)),
            "churn_probability": maybe_null(rng.random(n)),
            "items_ski": rng.integers(0, 4, n),
            "items_outdoor": rng.integers(0, 2, n),
            "has_ever_responded": rng.random(n) < 0.5,
            "days_since_last_order": maybe_null(rng.integers(0, 200, n)),
            "mean_interpurchase_days": maybe_null(rng.integers(5, 60, n)),
            "is_cart_abandoned_24h": rng.random(n) < 0.1,
            "is_spam_reported": rng.random(n) < 0.02,
            "is_email_opt_in": rng.random(n) < 0.7,
            "is_email_valid": rng.random(n) < 0.95,
            "is_sms_opt_in": rng.random(n) < 0.3,
            "is_phone_valid": True,
            "email_domain": "shop.example",
            "days_since_last_app_open": maybe_null(rng.integers(0, 30, n)),
        }
    )


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 300), seed=st.integers(0, 10_000), null_share=st.sampled_from([0, 0.5, 1]))
def test_every_customer_is_in_exactly_one_micro_segment(n, seed, null_share):
    frame = customers(n, seed, null_share)
    result = segment_customers(frame, DEMO, D)
    m = result.membership
    assert len(m) == n and m["micro_segment_id"].notna().all()
    assert set(m["customer_id"]) == set(frame["customer_id"])
    assert result.micro_segments["customer_count"].sum() == n
    for dim in DEMO.dimensions:
        assert set(m[dim.id]) <= set(dim.bucket_labels())


def test_target_groups_follow_their_filters():
    frame = customers(2000, seed=3)
    m = segment_customers(frame, DEMO, D).membership.set_index("customer_id")
    f = frame.set_index("customer_id")
    m = m.reindex(f.index)
    in_group = m["target_groups"].map(lambda groups: "ski_churners" in groups)
    expected = (f["churn_probability"].fillna(0) >= 0.5) & (f["items_ski"] >= 2)
    assert (in_group == expected).all()
    top = m["target_groups"].map(lambda groups: "lapsed_top_spenders" in groups)
    assert 0 < top.sum() <= 0.1 * len(f) + 1
    assert (f.loc[top[top].index, "days_since_last_order"] > 60).all()


def test_reachability_needs_consent_validity_and_no_complaint():
    frame = customers(500, seed=4)
    m = segment_customers(frame, DEMO, D).membership.set_index("customer_id")
    f = frame.set_index("customer_id")
    m = m.reindex(f.index)
    expected = f["is_email_opt_in"] & f["is_email_valid"] & ~f["is_spam_reported"]
    assert (m["is_email_reachable"] == expected).all()
    assert (m["is_sms_reachable"] == f["is_sms_opt_in"]).all()


def test_missing_score_columns_segment_into_unscored_buckets():
    frame = customers(50).drop(columns=["clv_12m", "churn_probability"])
    result = segment_customers(frame, DEMO, D)
    assert set(result.membership["churn_risk"]) == {"churn_unscored"}
    assert "churn_probability" in result.missing_attributes


# --- catalog parts that need an optional source the shop does not provide --------------------


def test_without_events_the_activity_dimension_and_cart_groups_are_named() -> None:
    from tessera.campaigns.segmentation import unavailable_parts

    parts = unavailable_parts(DEMO, ["events"])
    assert parts.sources == ("events",)
    assert parts.dimensions == ("activity",)
    assert {"cart_abandoners", "cart_abandoners_gold", "new_handbag_browsers"} <= set(
        parts.target_groups
    )
    assert "lapsed_top_spenders" not in parts.target_groups  # orders only
    message = parts.message(D)
    assert "events not provided" in message and "activity" in message
    assert "cart_abandoners" in message


def test_a_group_that_names_a_dimension_of_a_missing_source_is_named() -> None:
    from tessera.campaigns.catalog import Catalog
    from tessera.campaigns.segmentation import unavailable_parts

    raw = DEMO.model_dump(by_alias=True, exclude_none=True)
    raw["target_groups"].append({"id": "openers", "where": {"response": {"eq": "opener"}}})
    catalog = Catalog.model_validate(raw)
    parts = unavailable_parts(catalog, ["campaign_responses"])
    assert "response" in parts.dimensions
    assert "openers" in parts.target_groups
    assert "big_spenders_never_responded" in parts.target_groups


def test_with_every_source_nothing_is_unavailable() -> None:
    from tessera.campaigns.segmentation import unavailable_parts

    parts = unavailable_parts(DEMO, [])
    assert not parts
    assert parts.as_metadata() == {"sources_not_provided": [], "dimensions": [],
                                   "target_groups": []}  # fmt: skip


def test_every_source_feature_is_a_catalog_attribute() -> None:
    from tessera.campaigns.attributes import FEATURE_ATTRIBUTES, SOURCE_FEATURES

    for source, features in SOURCE_FEATURES.items():
        assert set(features) <= set(FEATURE_ATTRIBUTES), source


def test_without_scores_the_score_dimensions_and_groups_are_named() -> None:
    from tessera.campaigns.segmentation import unavailable_parts

    parts = unavailable_parts(DEMO, ["events"], scores_missing=True)
    assert parts.sources == ("events", "ml.customer_scores")
    assert {"activity", "clv_tier", "churn_risk"} <= set(parts.dimensions)
    assert "ski_churners" in parts.target_groups
    assert "all_customers" not in parts.target_groups
    message = parts.message(D)
    assert "events, ml.customer_scores not provided" in message
    assert "churn_risk" in message and "ski_churners" in message
    assert not unavailable_parts(DEMO, [], scores_missing=False)
