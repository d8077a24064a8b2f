"""The customer attributes a catalog may use: as-of features, scores and derived values, typed."""

from __future__ import annotations

from typing import Literal

AttributeType = Literal["number", "bool", "text"]

CATEGORIES = ("handbags", "shoes", "ski", "outdoor", "electronics", "beauty", "home", "apparel")
CHANNELS = ("email", "sms", "direct_mail", "webhook")

_NUMBER_FEATURES = (
    "tenure_days",
    "orders_30d",
    "orders_90d",
    "orders_365d",
    "orders_total",
    "revenue_30d",
    "revenue_90d",
    "revenue_365d",
    "revenue_total",
    "avg_order_value",
    "days_since_last_order",
    "days_since_first_order",
    "mean_interpurchase_days",
    "order_trend_ratio",
    "revenue_trend_ratio",
    "events_7d",
    "events_30d",
    "page_views_30d",
    "product_views_30d",
    "searches_30d",
    "app_opens_30d",
    "add_to_cart_30d",
    "days_since_last_event",
    "days_since_last_app_open",
    "cart_abandonment_rate_30d",
    "messages_received_90d",
    "opens_90d",
    "clicks_90d",
    "conversions_90d",
    "days_since_last_response",
    *(f"items_{c}" for c in CATEGORIES),
    *(f"share_{c}" for c in CATEGORIES),
)
_BOOL_FEATURES = (
    "is_email_opt_in",
    "is_sms_opt_in",
    "is_cart_abandoned_24h",
    "has_ever_responded",
    "is_unsubscribed",
    "is_bounced",
    "is_spam_reported",
)
_TEXT_FEATURES = ("country", "top_category", "top_viewed_category_30d")

#: Columns of ``marts.customer_features`` the segmentation reads (besides the keys).
FEATURE_ATTRIBUTES: dict[str, AttributeType] = {
    **dict.fromkeys(_NUMBER_FEATURES, "number"),
    **dict.fromkeys(_BOOL_FEATURES, "bool"),
    **dict.fromkeys(_TEXT_FEATURES, "text"),
}

#: The optional source each feature needs. A shop may run with customers and orders only; the
#: features of a source it does not provide (before campaign date D) are NULL
#: (docs/data-model.md), and the catalog parts built on them select nobody.
SOURCE_FEATURES: dict[str, tuple[str, ...]] = {
    "order_items": (
        *(f"items_{c}" for c in CATEGORIES),
        *(f"share_{c}" for c in CATEGORIES),
        "top_category",
    ),
    "events": (
        "events_7d",
        "events_30d",
        "page_views_30d",
        "product_views_30d",
        "searches_30d",
        "app_opens_30d",
        "add_to_cart_30d",
        "days_since_last_event",
        "days_since_last_app_open",
        "top_viewed_category_30d",
        "is_cart_abandoned_24h",
        "cart_abandonment_rate_30d",
    ),
    "campaign_responses": (
        "messages_received_90d",
        "opens_90d",
        "clicks_90d",
        "conversions_90d",
        "has_ever_responded",
        "days_since_last_response",
        "is_unsubscribed",
        "is_bounced",
        "is_spam_reported",
    ),
}

#: Columns of ``ml.customer_scores``.
SCORE_ATTRIBUTES: dict[str, AttributeType] = {
    "churn_probability": "number",
    "predicted_value_90d": "number",
    "clv_12m": "number",
}

#: Columns of ``marts.dim_customers`` used for reachability and test-account rules.
CUSTOMER_ATTRIBUTES: dict[str, AttributeType] = {
    "is_email_valid": "bool",
    "is_phone_valid": "bool",
    "email_domain": "text",
}

#: Computed by the segmentation from the columns above.
DERIVED_ATTRIBUTES: dict[str, AttributeType] = {
    # days since the last order divided by the customer's own mean inter-purchase interval:
    # 2.0 means the gap is twice as long as usual (frequency deviation).
    "purchase_gap_ratio": "number",
}

BASE_ATTRIBUTES: dict[str, AttributeType] = {
    **FEATURE_ATTRIBUTES,
    **SCORE_ATTRIBUTES,
    **CUSTOMER_ATTRIBUTES,
    **DERIVED_ATTRIBUTES,
}
