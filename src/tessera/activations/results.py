"""Campaign results: treatment vs control conversion and revenue, lift with confidence intervals.

Intent to treat: every non-control assignment is 'treatment' whether or not its message was
sent. A customer converts when they have a completed order, or an attributed conversion event
of that campaign, inside the campaign's window [cohort date, cohort date + duration) truncated
at the report date (nothing at or after the report date is read).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from tessera.warehouse.duckdb_io import empty_frame

Z95 = 1.959963984540054

#: activations.campaign_results (typed, so a date without results still creates the table).
RESULT_SCHEMA = pa.schema(
    [
        ("as_of_date", pa.date32()),
        ("campaign_id", pa.string()),
        ("cohorts", pa.int64()),
        ("treatment_n", pa.int64()),
        ("control_n", pa.int64()),
        ("treatment_conversions", pa.int64()),
        ("control_conversions", pa.int64()),
        ("treatment_rate", pa.float64()),
        ("control_rate", pa.float64()),
        ("abs_lift", pa.float64()),
        ("abs_lift_ci_low", pa.float64()),
        ("abs_lift_ci_high", pa.float64()),
        ("rel_lift", pa.float64()),
        ("rel_lift_ci_low", pa.float64()),
        ("rel_lift_ci_high", pa.float64()),
        ("p_value", pa.float64()),
        ("treatment_revenue_per_customer", pa.float64()),
        ("control_revenue_per_customer", pa.float64()),
        ("revenue_lift_per_customer", pa.float64()),
        ("revenue_lift_ci_low", pa.float64()),
        ("revenue_lift_ci_high", pa.float64()),
        ("incremental_revenue", pa.float64()),
        ("share_windows_complete", pa.float64()),
    ]
)
RESULT_COLUMNS = RESULT_SCHEMA.names


def wilson(successes: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a proportion (vectorised)."""
    n = np.asarray(n, float)
    p = np.divide(successes, n, out=np.zeros_like(n), where=n > 0)
    denom = 1 + z**2 / np.where(n > 0, n, 1)
    centre = (p + z**2 / (2 * np.where(n > 0, n, 1))) / denom
    half = (
        z
        * np.sqrt(p * (1 - p) / np.where(n > 0, n, 1) + z**2 / (4 * np.where(n > 0, n, 1) ** 2))
        / denom
    )
    return np.where(n > 0, centre - half, np.nan), np.where(n > 0, centre + half, np.nan)


def newcombe_diff(x1, n1, x2, n2, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval for p1 - p2 (method 10)."""
    p1 = np.divide(x1, n1, out=np.zeros(len(n1)), where=np.asarray(n1) > 0)
    p2 = np.divide(x2, n2, out=np.zeros(len(n2)), where=np.asarray(n2) > 0)
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    d = p1 - p2
    low = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return low, high


def ratio_ci(x1, n1, x2, n2, z: float = Z95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Relative lift p1/p2 - 1 with a Katz log interval (0.5 added when a count is zero)."""
    x1, n1, x2, n2 = (np.asarray(a, float) for a in (x1, n1, x2, n2))
    zero = (x1 == 0) | (x2 == 0)
    a, b = x1 + 0.5 * zero, x2 + 0.5 * zero
    c, d = n1 + zero, n2 + zero
    with np.errstate(divide="ignore", invalid="ignore"):
        rr = (a / c) / (b / d)
        se = np.sqrt(1 / a - 1 / c + 1 / b - 1 / d)
        raw = np.where(x2 > 0, (x1 / n1) / (x2 / n2) - 1, np.nan)
        return raw, rr * np.exp(-z * se) - 1, rr * np.exp(z * se) - 1


def customer_outcomes(
    as_of: dt.date, assignments: pd.DataFrame, orders: pd.DataFrame, conversions: pd.DataFrame
) -> pd.DataFrame:
    """One row per (campaign, cohort date, customer, arm) with converted and revenue."""
    con = duckdb.connect()
    try:
        con.register("a", assignments)
        con.register("o", orders)
        con.register("cv", conversions)
        return con.execute(
            """
            with cohorts as (
                select distinct campaign_id, cast(as_of_date as date) as cohort_date, customer_id,
                       bool_or(cast(is_control as boolean)) as is_control,
                       max(greatest(coalesce(cast(duration_days as integer), 1), 1)) as duration_days
                from a where cast(as_of_date as date) < $d
                group by all
            ),
            windows as (
                select *, cast(cohort_date as timestamp) as w_start,
                       least(cast(cohort_date as timestamp) + to_days(duration_days),
                             cast($d as timestamp)) as w_end,
                       cohort_date + to_days(duration_days) <= $d as is_window_complete
                from cohorts
            ),
            ord as (
                select w.campaign_id, w.cohort_date, w.customer_id,
                       count(*) as orders, sum(cast(o.amount as double)) as revenue
                from windows w join o on o.customer_id = w.customer_id
                 and cast(o.ordered_at as timestamp) >= w.w_start
                 and cast(o.ordered_at as timestamp) < w.w_end
                where coalesce(o.status, 'completed') = 'completed'
                group by all
            ),
            conv as (
                select w.campaign_id, w.cohort_date, w.customer_id,
                       count(*) as conversions, sum(coalesce(cast(cv.revenue as double), 0)) as revenue
                from windows w join cv on cv.customer_id = w.customer_id
                 and cv.campaign_id = w.campaign_id
                 and cast(cv.occurred_at as timestamp) >= w.w_start
                 and cast(cv.occurred_at as timestamp) < w.w_end
                group by all
            )
            select w.campaign_id, w.cohort_date, w.customer_id, w.is_control, w.is_window_complete,
                   coalesce(ord.orders, 0) + coalesce(conv.conversions, 0) > 0 as converted,
                   coalesce(ord.revenue, 0) + coalesce(conv.revenue, 0) as revenue
            from windows w
            left join ord using (campaign_id, cohort_date, customer_id)
            left join conv using (campaign_id, cohort_date, customer_id)
            """,
            {"d": as_of},
        ).df()
    finally:
        con.close()


def campaign_results(
    as_of: dt.date, assignments: pd.DataFrame, orders: pd.DataFrame, conversions: pd.DataFrame
) -> pd.DataFrame:
    """Per campaign, over all cohorts before ``as_of``: rates, lifts and 95% intervals."""
    per = customer_outcomes(as_of, assignments, orders, conversions)
    if per.empty:
        return empty_frame(RESULT_SCHEMA)
    per["arm"] = np.where(per["is_control"], "c", "t")
    g = per.groupby(["campaign_id", "arm"]).agg(
        n=("customer_id", "size"),
        x=("converted", "sum"),
        rev=("revenue", "mean"),
        rev_var=("revenue", "var"),
        complete=("is_window_complete", "mean"),
    )
    wide = g.unstack("arm")
    wide.columns = [f"{a}_{b}" for a, b in wide.columns]
    for col in (
        "n_t",
        "n_c",
        "x_t",
        "x_c",
        "rev_t",
        "rev_c",
        "rev_var_t",
        "rev_var_c",
        "complete_t",
    ):
        if col not in wide:
            wide[col] = np.nan
    wide[["n_t", "n_c", "x_t", "x_c"]] = wide[["n_t", "n_c", "x_t", "x_c"]].fillna(0)
    cohorts = per.groupby("campaign_id")["cohort_date"].nunique()
    n_t, n_c, x_t, x_c = (wide[c].to_numpy(float) for c in ("n_t", "n_c", "x_t", "x_c"))
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_t, rate_c = np.where(n_t > 0, x_t / n_t, np.nan), np.where(n_c > 0, x_c / n_c, np.nan)
        lo, hi = newcombe_diff(x_t, n_t, x_c, n_c)
        rel, rel_lo, rel_hi = ratio_ci(x_t, n_t, x_c, n_c)
        pooled = (x_t + x_c) / (n_t + n_c)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
        # Imported here: scipy.stats costs seconds at import time of the Dagster definitions.
        from scipy import stats

        p_value = np.where(se > 0, 2 * stats.norm.sf(np.abs((rate_t - rate_c) / se)), np.nan)
        rev_t, rev_c = wide["rev_t"].to_numpy(float), wide["rev_c"].to_numpy(float)
        rev_se = np.sqrt(
            wide["rev_var_t"].fillna(0).to_numpy(float) / n_t
            + wide["rev_var_c"].fillna(0).to_numpy(float) / n_c
        )
    out = pd.DataFrame(
        {
            "as_of_date": as_of,
            "campaign_id": wide.index,
            "cohorts": cohorts.reindex(wide.index).to_numpy(),
            "treatment_n": n_t.astype(int),
            "control_n": n_c.astype(int),
            "treatment_conversions": x_t.astype(int),
            "control_conversions": x_c.astype(int),
            "treatment_rate": rate_t,
            "control_rate": rate_c,
            "abs_lift": rate_t - rate_c,
            "abs_lift_ci_low": np.where((n_t > 0) & (n_c > 0), lo, np.nan),
            "abs_lift_ci_high": np.where((n_t > 0) & (n_c > 0), hi, np.nan),
            "rel_lift": rel,
            "rel_lift_ci_low": np.where((n_t > 0) & (n_c > 0), rel_lo, np.nan),
            "rel_lift_ci_high": np.where((n_t > 0) & (n_c > 0), rel_hi, np.nan),
            "p_value": p_value,
            "treatment_revenue_per_customer": rev_t,
            "control_revenue_per_customer": rev_c,
            "revenue_lift_per_customer": rev_t - rev_c,
            "revenue_lift_ci_low": rev_t - rev_c - Z95 * rev_se,
            "revenue_lift_ci_high": rev_t - rev_c + Z95 * rev_se,
            "incremental_revenue": (rev_t - rev_c) * n_t,
            "share_windows_complete": wide["complete_t"].to_numpy(float),
        }
    )
    return out[RESULT_COLUMNS].reset_index(drop=True)


# --------------------------------------------------------------------------- the whole programme

#: activations.programme_results (typed, so a date without results still creates the table).
PROGRAMME_SCHEMA = pa.schema(
    [
        ("as_of_date", pa.date32()),
        ("window_start", pa.date32()),
        ("scope", pa.string()),
        ("campaign_id", pa.string()),
        ("treatment_n", pa.int64()),
        ("control_n", pa.int64()),
        ("treatment_conversions", pa.int64()),
        ("control_conversions", pa.int64()),
        ("treatment_rate", pa.float64()),
        ("control_rate", pa.float64()),
        ("abs_lift", pa.float64()),
        ("abs_lift_ci_low", pa.float64()),
        ("abs_lift_ci_high", pa.float64()),
        ("rel_lift", pa.float64()),
        ("rel_lift_ci_low", pa.float64()),
        ("rel_lift_ci_high", pa.float64()),
        ("p_value", pa.float64()),
        ("treatment_revenue_per_customer", pa.float64()),
        ("control_revenue_per_customer", pa.float64()),
        ("revenue_lift_per_customer", pa.float64()),
        ("revenue_lift_ci_low", pa.float64()),
        ("revenue_lift_ci_high", pa.float64()),
        ("incremental_revenue", pa.float64()),
    ]
)
PROGRAMME_COLUMNS = PROGRAMME_SCHEMA.names


def arm_comparison(per: pd.DataFrame) -> pd.DataFrame:
    """Treatment vs control per ``key`` from one row per (key, customer): ``is_control``,
    ``converted``, ``revenue``. Newcombe interval for the rate difference, Katz for the ratio,
    Welch (normal) for revenue per customer; incremental revenue = revenue lift x treated."""
    cols = ["key", *PROGRAMME_COLUMNS[4:]]
    if per.empty:
        return pd.DataFrame(columns=cols)
    per = per.assign(arm=np.where(per["is_control"].astype(bool), "c", "t"))
    g = per.groupby(["key", "arm"]).agg(
        n=("customer_id", "size"),
        x=("converted", "sum"),
        rev=("revenue", "mean"),
        rev_var=("revenue", "var"),
    )
    wide = g.unstack("arm")
    wide.columns = [f"{a}_{b}" for a, b in wide.columns]
    for col in ("n_t", "n_c", "x_t", "x_c", "rev_t", "rev_c", "rev_var_t", "rev_var_c"):
        if col not in wide:
            wide[col] = np.nan
    wide[["n_t", "n_c", "x_t", "x_c"]] = wide[["n_t", "n_c", "x_t", "x_c"]].fillna(0)
    n_t, n_c, x_t, x_c = (wide[c].to_numpy(float) for c in ("n_t", "n_c", "x_t", "x_c"))
    both = (n_t > 0) & (n_c > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_t = np.where(n_t > 0, x_t / n_t, np.nan)
        rate_c = np.where(n_c > 0, x_c / n_c, np.nan)
        lo, hi = newcombe_diff(x_t, n_t, x_c, n_c)
        rel, rel_lo, rel_hi = ratio_ci(x_t, n_t, x_c, n_c)
        pooled = (x_t + x_c) / (n_t + n_c)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
        from scipy import stats

        p_value = np.where(se > 0, 2 * stats.norm.sf(np.abs((rate_t - rate_c) / se)), np.nan)
        rev_t, rev_c = wide["rev_t"].to_numpy(float), wide["rev_c"].to_numpy(float)
        rev_se = np.sqrt(
            wide["rev_var_t"].fillna(0).to_numpy(float) / n_t
            + wide["rev_var_c"].fillna(0).to_numpy(float) / n_c
        )
    out = pd.DataFrame(
        {
            "key": wide.index,
            "treatment_n": n_t.astype(int),
            "control_n": n_c.astype(int),
            "treatment_conversions": x_t.astype(int),
            "control_conversions": x_c.astype(int),
            "treatment_rate": rate_t,
            "control_rate": rate_c,
            "abs_lift": rate_t - rate_c,
            "abs_lift_ci_low": np.where(both, lo, np.nan),
            "abs_lift_ci_high": np.where(both, hi, np.nan),
            "rel_lift": rel,
            "rel_lift_ci_low": np.where(both, rel_lo, np.nan),
            "rel_lift_ci_high": np.where(both, rel_hi, np.nan),
            "p_value": p_value,
            "treatment_revenue_per_customer": rev_t,
            "control_revenue_per_customer": rev_c,
            "revenue_lift_per_customer": rev_t - rev_c,
            "revenue_lift_ci_low": np.where(both, rev_t - rev_c - Z95 * rev_se, np.nan),
            "revenue_lift_ci_high": np.where(both, rev_t - rev_c + Z95 * rev_se, np.nan),
            "incremental_revenue": np.where(both, (rev_t - rev_c) * n_t, np.nan),
        }
    )
    return out[cols].reset_index(drop=True)


def programme_outcomes(
    window_start: dt.date,
    as_of: dt.date,
    population: pd.DataFrame,
    holdout: pd.DataFrame,
    assignments: pd.DataFrame,
    holdout_exclusions: pd.DataFrame,
    orders: pd.DataFrame,
) -> pd.DataFrame:
    """One row per (key, customer): the programme and each campaign against the global control.

    ``key`` 'programme': every customer of ``population`` (customer_id) on ``window_start``;
    members of ``holdout`` (customer_id) are the control, all others the treatment (intent to
    treat: treated whether or not a campaign reached them). Outcomes over [window_start, as_of).
    ``key`` = a campaign id: its treated (non-control) assignees in the window against the
    global-control members it would have targeted (``holdout_exclusions``: customer_id,
    campaign_id, as_of_date of reason global_control), each from their first date in the window.
    Conversion is a completed order; revenue the completed orders' amounts.
    """
    con = duckdb.connect()
    try:
        for name, frame in (
            ("pop", population),
            ("gc", holdout),
            ("a", assignments),
            ("gx", holdout_exclusions),
            ("o", orders),
        ):
            con.register(name, frame)
        return con.execute(
            """
            with entries as (
                select 'programme' as key, cast(p.customer_id as varchar) as customer_id,
                       gc.customer_id is not null as is_control, cast($s as date) as first_date
                from (select distinct customer_id from pop) p
                left join (select distinct customer_id from gc) gc using (customer_id)
                union all
                select campaign_id, cast(customer_id as varchar), false,
                       min(cast(as_of_date as date))
                from a
                where not cast(is_control as boolean)
                  and cast(as_of_date as date) >= $s and cast(as_of_date as date) < $d
                group by all
                union all
                select campaign_id, cast(customer_id as varchar), true,
                       min(cast(as_of_date as date))
                from gx
                where cast(as_of_date as date) >= $s and cast(as_of_date as date) < $d
                group by all
            ),
            ord as (
                select e.key, e.customer_id, count(*) as orders,
                       sum(cast(o.amount as double)) as revenue
                from entries e
                join o on cast(o.customer_id as varchar) = e.customer_id
                 and cast(o.ordered_at as timestamp) >= cast(e.first_date as timestamp)
                 and cast(o.ordered_at as timestamp) < cast($d as timestamp)
                where coalesce(o.status, 'completed') = 'completed'
                group by all
            )
            select e.key, e.customer_id, e.is_control, e.first_date,
                   coalesce(ord.orders, 0) > 0 as converted, coalesce(ord.revenue, 0) as revenue
            from entries e left join ord using (key, customer_id)
            order by e.key = 'programme' desc, e.key, e.customer_id
            """,
            {"s": window_start, "d": as_of},
        ).df()
    finally:
        con.close()


def programme_results(per: pd.DataFrame, window_start: dt.date, as_of: dt.date) -> pd.DataFrame:
    """``PROGRAMME_COLUMNS``: the programme row first, then one row per campaign."""
    compared = arm_comparison(per)
    if compared.empty:
        return empty_frame(PROGRAMME_SCHEMA)
    compared.insert(0, "as_of_date", as_of)
    compared.insert(1, "window_start", window_start)
    is_programme = compared["key"] == "programme"
    compared.insert(2, "scope", np.where(is_programme, "programme", "campaign"))
    compared.insert(3, "campaign_id", np.where(is_programme, None, compared["key"]))
    compared = compared.drop(columns="key")
    order = np.argsort(~is_programme.to_numpy(), kind="stable")
    return compared.iloc[order][PROGRAMME_COLUMNS].reset_index(drop=True)


def programme_series(
    window_start: dt.date,
    as_of: dt.date,
    population: pd.DataFrame,
    holdout: pd.DataFrame,
    orders: pd.DataFrame,
) -> pd.DataFrame:
    """Plot-friendly: per day of [window_start, as_of) and arm ('programme', 'global_control'),
    the customers and their cumulative conversion rate and revenue per customer up to that day."""
    con = duckdb.connect()
    try:
        for name, frame in (("pop", population), ("gc", holdout), ("o", orders)):
            con.register(name, frame)
        return con.execute(
            """
            with arms as (
                select cast(p.customer_id as varchar) as customer_id,
                       case when gc.customer_id is null then 'programme' else 'global_control'
                       end as arm
                from (select distinct customer_id from pop) p
                left join (select distinct customer_id from gc) gc using (customer_id)
            ),
            sizes as (select arm, count(*) as customers from arms group by arm),
            days as (
                select cast(unnest(generate_series(cast($s as date), cast($d as date) - 1,
                                                   interval 1 day)) as date) as day
            ),
            ord as (
                select a.arm, a.customer_id, cast(o.ordered_at as date) as day,
                       cast(o.amount as double) as amount
                from arms a join o on cast(o.customer_id as varchar) = a.customer_id
                where coalesce(o.status, 'completed') = 'completed'
                  and cast(o.ordered_at as timestamp) >= cast($s as timestamp)
                  and cast(o.ordered_at as timestamp) < cast($d as timestamp)
            ),
            firsts as (select arm, customer_id, min(day) as day from ord group by all)
            select d.day as date, z.arm, z.customers,
                   (select count(*) from firsts f where f.arm = z.arm and f.day <= d.day)
                       / z.customers as conversion_rate,
                   coalesce((select sum(amount) from ord r where r.arm = z.arm and r.day <= d.day),
                            0) / z.customers as revenue_per_customer
            from days d cross join sizes z
            order by date, arm
            """,
            {"s": window_start, "d": as_of},
        ).df()
    finally:
        con.close()
