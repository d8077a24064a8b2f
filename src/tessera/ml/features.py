"""Feature matrices for the models: data-driven column selection and transaction-only features.

The warehouse's `customer_features` columns flow into the models without code changes: every
column except the keys, labels and audit columns (`_...`) is a feature; strings become pandas
categories and booleans integers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import duckdb
import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

KEY_COLUMNS = ("as_of_date", "customer_id")
LABEL_PREFIX = "label_"
KNOWN_CATEGORICALS = ("country", "top_category", "top_viewed_category_30d")
#: Shop-level seasonal index of the label window (see `season_index_sql`): an offset of the
#: models, never a feature, because trees cannot extrapolate a date-level value.
SEASON_COLUMN = "season_index"
#: Days back to "the same window last year": 52 weeks keeps weekdays aligned.
SEASON_LAG_DAYS = 364
#: "<window>:<horizon>" the BG/NBD columns of a prepared frame were computed for.
BGNBD_MARKER = "_bgnbd_horizon_days"


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """All usable feature columns of a features frame, in frame order."""
    out = []
    for column in frame.columns:
        if (
            column in KEY_COLUMNS
            or column == SEASON_COLUMN
            or column.startswith("_")
            or column.startswith(LABEL_PREFIX)
        ):
            continue
        dtype = frame[column].dtype
        if pd.api.types.is_datetime64_any_dtype(dtype) or column.endswith("_at"):
            continue  # raw timestamps are not comparable across snapshot dates
        out.append(column)
    return out


@dataclass
class FeatureSpec:
    """Which columns a model uses and the category levels it was trained with."""

    features: list[str]
    categories: dict[str, list[str]] = field(default_factory=dict)
    #: Label window of the derived BG/NBD columns (None: not used); see `prepare`.
    bgnbd_horizon: int | None = None

    def prepare(
        self,
        frame: pd.DataFrame,
        horizon_days: int | None = None,
        fit_on: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Add the derived BG/NBD columns the model needs (over its label window and over
        `horizon_days`, default the window) unless the frame already has them for that
        horizon. Call once per frame: the BG/NBD fit per date takes a moment. `fit_on`: the
        frame whose rows of each date the fit uses (`add_bgnbd_features`), when `frame` is a
        sample of it."""
        from tessera.ml.baselines import BGNBD_FEATURES, add_bgnbd_features

        if not self.bgnbd_horizon:
            return frame
        horizon = horizon_days or self.bgnbd_horizon
        marker = f"{self.bgnbd_horizon}:{horizon}"
        have = set(BGNBD_FEATURES) <= set(frame.columns) and BGNBD_MARKER in frame.columns
        if have and (frame[BGNBD_MARKER] == marker).all():
            return frame
        out = add_bgnbd_features(frame, self.bgnbd_horizon, horizon, fit_on=fit_on)
        out[BGNBD_MARKER] = marker
        return out

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        bgnbd_horizon: int | None = None,
        exclude: Sequence[str] = (),
    ) -> FeatureSpec:
        features = [c for c in feature_columns(frame) if c not in set(exclude)]
        categories: dict[str, list[str]] = {}
        for column in features:
            series = frame[column]
            if column in KNOWN_CATEGORICALS or _is_text(series):
                levels = series.dropna().astype(str).unique().tolist()
                categories[column] = sorted(levels)
        return cls(features=features, categories=categories, bgnbd_horizon=bgnbd_horizon)

    def matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model matrix: fixed column order, categories with the training levels, floats."""
        out = {}
        for column in self.features:
            if column not in frame.columns:
                # A feature dropped upstream scores as missing rather than failing the run.
                log.warning("feature %s missing from the input; scored as missing", column)
                series = pd.Series(np.nan, index=frame.index)
            else:
                series = frame[column]
            if column in self.categories:
                out[column] = pd.Categorical(
                    series.astype("string"), categories=self.categories[column]
                )
            elif pd.api.types.is_bool_dtype(series.dtype):
                out[column] = series.astype("float64")
            else:
                out[column] = pd.to_numeric(series, errors="coerce").astype("float64")
        return pd.DataFrame(out, index=frame.index)


def _is_text(series: pd.Series) -> bool:
    return (
        pd.api.types.is_object_dtype(series.dtype)
        or pd.api.types.is_string_dtype(series.dtype)
        or isinstance(series.dtype, pd.CategoricalDtype)
    ) and not pd.api.types.is_bool_dtype(series.dtype)


def transaction_features_sql(orders: str, dates: Sequence[date]) -> str:
    """SQL for transaction-only features of every customer with a purchase before each date.

    `orders` is a relation with customer_id, ordered_at (TIMESTAMP) and amount. Column names are
    the warehouse's where they overlap; `purchase_gap_ratio` and `std_interpurchase_days` are
    extra. Only rows with ordered_at < as_of_date are read for a date (point-in-time).
    """
    if not dates:
        raise ValueError("transaction_features_sql needs at least one date")
    values = ", ".join(f"(date '{d.isoformat()}')" for d in sorted(set(dates)))
    return f"""
with dates as (select * from (values {values}) as v(as_of_date)),
tx as (
    select customer_id, ordered_at, amount,
           datediff('second', lag(ordered_at) over (partition by customer_id order by ordered_at),
                    ordered_at) / 86400.0 as gap_days
    from {orders}
),
joined as (
    select d.as_of_date, tx.*,
           datediff('second', tx.ordered_at, d.as_of_date::timestamp) / 86400.0 as age_days
    from dates d join tx on tx.ordered_at < d.as_of_date::timestamp
),
agg as (
    select as_of_date, customer_id,
        count(*) filter (where age_days <= 30) as orders_30d,
        count(*) filter (where age_days <= 90) as orders_90d,
        count(*) filter (where age_days <= 180) as orders_180d,
        count(*) filter (where age_days <= 365) as orders_365d,
        count(*) as orders_total,
        coalesce(sum(amount) filter (where age_days <= 30), 0) as revenue_30d,
        coalesce(sum(amount) filter (where age_days <= 90), 0) as revenue_90d,
        coalesce(sum(amount) filter (where age_days <= 180), 0) as revenue_180d,
        coalesce(sum(amount) filter (where age_days <= 365), 0) as revenue_365d,
        sum(amount) as revenue_total,
        sum(amount) / count(*) as avg_order_value,
        max(amount) as max_order_value,
        min(age_days) as days_since_last_order,
        max(age_days) as days_since_first_order,
        case when count(*) > 1 then (max(age_days) - min(age_days)) / (count(*) - 1) end
            as mean_interpurchase_days,
        stddev_samp(gap_days) as std_interpurchase_days,
        count(*) filter (where age_days > 365 and age_days <= 455) as orders_prev_year_90d,
        coalesce(sum(amount) filter (where age_days > 365 and age_days <= 455), 0)
            as revenue_prev_year_90d,
        count(*) filter (where age_days > 90 and age_days <= 180) as orders_prev_90d
    from joined
    group by as_of_date, customer_id
)
select as_of_date, customer_id,
    orders_30d, orders_90d, orders_180d, orders_365d, orders_total,
    revenue_30d, revenue_90d, revenue_180d, revenue_365d, revenue_total,
    avg_order_value, max_order_value, days_since_last_order, days_since_first_order,
    mean_interpurchase_days, std_interpurchase_days,
    days_since_last_order / nullif(mean_interpurchase_days, 0) as purchase_gap_ratio,
    (orders_90d + 1.0) / (orders_prev_year_90d + 1.0) as order_trend_ratio,
    (revenue_90d + 1.0) / (revenue_prev_year_90d + 1.0) as revenue_trend_ratio,
    (orders_90d + 1.0) / (orders_prev_90d + 1.0) as order_momentum_ratio
from agg
order by as_of_date, customer_id
"""


def transaction_features(
    con: duckdb.DuckDBPyConnection, orders: str, dates: Sequence[date]
) -> pd.DataFrame:
    """Run `transaction_features_sql` and return a frame with as_of_date as a date column."""
    frame = con.execute(transaction_features_sql(orders, dates)).df()
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"]).dt.date
    return frame


def season_index_sql(orders: str, dates: Sequence[date], horizon_days: int) -> str:
    """SQL for each date t's seasonal index of the window [t, t+H), from orders before t only.

    Over the customers who had bought before t-364 (a fixed cohort, so the shop's growth from
    new customers does not leak in): index(t) = their revenue in [t-364, t-364+H) /
    (their revenue in [t-364, t) x H/364), the share of last year's revenue that fell into the
    coming window's calendar days relative to an even spread. NULL when the orders do not
    reach back a full year before t. The cohort's own slow decay biases every date's index by
    about the same factor, which the models' intercepts absorb.
    """
    if not dates:
        raise ValueError("season_index_sql needs at least one date")
    values = ", ".join(f"(date '{d.isoformat()}')" for d in sorted(set(dates)))
    lag, h = SEASON_LAG_DAYS, int(horizon_days)
    return f"""
with dates as (select * from (values {values}) as v(as_of_date)),
firsts as (
    select customer_id, min(cast(ordered_at as date)) as first_day from {orders} group by 1
),
daily as (
    select f.first_day, cast(o.ordered_at as date) as day, sum(o.amount) as revenue
    from {orders} o join firsts f using (customer_id)
    group by 1, 2
),
bounds as (
    select as_of_date, as_of_date - to_days(cast({lag} as integer)) as year_start,
           as_of_date - to_days(cast({lag - h} as integer)) as coming_end
    from dates
),
windows as (
    select b.as_of_date,
        sum(daily.revenue) filter (where daily.day < b.coming_end) as coming,
        sum(daily.revenue) as year_total
    from bounds b
    join daily
      on daily.first_day < b.year_start
     and daily.day >= b.year_start and daily.day < b.as_of_date
    group by b.as_of_date
)
select b.as_of_date,
    case when (select min(first_day) from firsts) < b.year_start and w.year_total > 0
         then coalesce(w.coming, 0) / (w.year_total * {h} / {lag}.0) end as {SEASON_COLUMN}
from bounds b left join windows w using (as_of_date)
order by b.as_of_date
"""


def add_season_index(
    con: duckdb.DuckDBPyConnection, orders: str, frame: pd.DataFrame, horizon_days: int
) -> pd.DataFrame:
    """`frame` with the `season_index` of its as_of_date(s) (NULL where history is short)."""
    dates = sorted(pd.to_datetime(frame["as_of_date"]).dt.date.unique())
    out = frame.drop(columns=[SEASON_COLUMN], errors="ignore")
    if not dates:
        out[SEASON_COLUMN] = np.nan
        return out
    index = con.execute(season_index_sql(orders, dates, horizon_days)).df()
    mapping = dict(
        zip(pd.to_datetime(index["as_of_date"]).dt.date, index[SEASON_COLUMN], strict=True)
    )
    keys = pd.to_datetime(out["as_of_date"]).dt.date
    out[SEASON_COLUMN] = keys.map(mapping).astype("float64").to_numpy()
    return out
