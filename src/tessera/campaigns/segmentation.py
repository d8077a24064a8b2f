"""Micro-segmentation: buckets per dimension, target-group flags and channel reachability per date."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from tessera.campaigns.attributes import (
    BASE_ATTRIBUTES,
    SCORE_ATTRIBUTES,
    SOURCE_FEATURES,
    AttributeType,
)
from tessera.campaigns.catalog import Catalog, Condition, Dimension
from tessera.campaigns.errors import MatrixInputError

log = logging.getLogger(__name__)

REACHABILITY_COLUMNS = (
    "is_email_reachable",
    "is_sms_reachable",
    "is_direct_mail_reachable",
    "is_webhook_reachable",
)

_SQL_TYPES: dict[AttributeType, str] = {"number": "DOUBLE", "bool": "BOOLEAN", "text": "VARCHAR"}

# Attributes reachability always needs, whether or not the catalog mentions them.
_REACH_INPUTS = (
    "is_email_opt_in",
    "is_email_valid",
    "is_unsubscribed",
    "is_bounced",
    "is_spam_reported",
    "is_sms_opt_in",
    "is_phone_valid",
    "days_since_last_app_open",
)


@dataclass(frozen=True)
class SegmentResult:
    """Membership (one row per customer) and the micro-segment sizes for one date."""

    membership: pd.DataFrame
    micro_segments: pd.DataFrame
    missing_attributes: list[str] = field(default_factory=list)


#: What ``UnavailableParts.sources`` names when the warehouse has no scores (never scored).
SCORES_SOURCE = "ml.customer_scores"


@dataclass(frozen=True)
class UnavailableParts:
    """The catalog parts that need a source the shop did not provide (their features are NULL).

    ``sources`` lists the optional sources not provided, and ``ml.customer_scores`` when the
    warehouse was never scored (the score attributes are then NULL).
    """

    sources: tuple[str, ...]
    dimensions: tuple[str, ...]  # dimension ids: every customer lands in their null bucket
    target_groups: tuple[str, ...]  # target group ids: empty

    def __bool__(self) -> bool:
        return bool(self.dimensions or self.target_groups)

    def message(self, as_of: dt.date) -> str:
        """One warning line for the run log."""
        parts = []
        if self.dimensions:
            parts.append(f"dimension(s) {', '.join(self.dimensions)} (everyone in the null bucket)")
        if self.target_groups:
            parts.append(f"target group(s) {', '.join(self.target_groups)}")
        return (
            f"campaign date {as_of}: {', '.join(self.sources)} not provided; the catalog's "
            + " and ".join(parts)
            + " depend on their columns, which are NULL (a comparison with a NULL value does not "
            "hold); see the README's 'Your own data'"
        )

    def as_metadata(self) -> dict[str, list[str]]:
        return {
            "sources_not_provided": list(self.sources),
            "dimensions": list(self.dimensions),
            "target_groups": list(self.target_groups),
        }


def unavailable_parts(
    catalog: Catalog, missing_sources: Collection[str], scores_missing: bool = False
) -> UnavailableParts:
    """The dimensions and target groups whose attributes need one of ``missing_sources``.

    A target group depends on a source through an attribute it filters on, or through a
    dimension it names (e.g. ``response: {eq: opener}`` needs campaign_responses).
    ``scores_missing`` adds the parts built on the scores (churn_probability, ...).
    """
    missing = tuple(s for s in SOURCE_FEATURES if s in set(missing_sources))
    unknown = sorted(set(missing_sources) - set(SOURCE_FEATURES))
    if unknown:
        raise ValueError(f"unknown optional source(s) {', '.join(unknown)}; "
                         f"expected some of {', '.join(SOURCE_FEATURES)}")  # fmt: skip
    null_attributes = {a for s in missing for a in SOURCE_FEATURES[s]}
    if scores_missing:
        missing += (SCORES_SOURCE,)
        null_attributes |= set(SCORE_ATTRIBUTES)
    dims = tuple(d.id for d in catalog.dimensions if d.attribute in null_attributes)
    groups = tuple(
        g.id
        for g in catalog.target_groups
        if any(a in null_attributes or a in dims for a in g.where)
    )
    return UnavailableParts(sources=missing, dimensions=dims, target_groups=groups)


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value))
    return "'" + str(value).replace("'", "''") + "'"


def _condition_sql(attr: str, cond: Condition, top_column: dict[str, str]) -> list[str]:
    col = f'"{attr}"'
    parts: list[str] = []
    for op, value in cond.operators().items():
        if op == "eq":
            parts.append(f"{col} = {_literal(value)}")
        elif op == "ne":
            parts.append(f"{col} is distinct from {_literal(value)}")
        elif op in {"lt", "le", "gt", "ge"}:
            sym = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}[op]
            parts.append(f"{col} {sym} {_literal(value)}")
        elif op == "in":
            parts.append(f"{col} in ({', '.join(_literal(v) for v in value)})")
        elif op == "not_in":
            parts.append(f"coalesce({col} not in ({', '.join(_literal(v) for v in value)}), true)")
        elif op == "is_null":
            parts.append(f"{col} is {'' if value else 'not '}null")
        elif op == "top_pct":
            parts.append(f'"{top_column[attr]}" < {float(value) / 100.0!r}')
    # a NULL attribute never satisfies a comparison: the customer is simply not in the group
    return [f"coalesce({p}, false)" for p in parts]


def condition_sql(attr: str, cond: Condition) -> list[str]:
    """SQL predicates for one attribute's condition (column named ``attr``), the target groups'
    own rule; the journeys evaluate trigger and step conditions with it. No ``top_pct``."""
    return _condition_sql(attr, cond, {})


def _bucket_sql(d: Dimension, thresholds: list[float] | None) -> str:
    col = f'"{d.attribute}"'
    null = _literal(d.null_label)
    if d.values is not None:
        whens = " ".join(f"when {col} = {_literal(v)} then {_literal(v)}" for v in d.values)
        return f"case when {col} is null then {null} {whens} else {_literal(d.other_label)} end"
    edges = thresholds if thresholds is not None else list(d.bins or [])
    labels = list(d.labels or [])
    whens = " ".join(
        f"when {col} < {_literal(e)} then {_literal(lab)}"
        for e, lab in zip(edges, labels, strict=False)
    )
    return f"case when {col} is null then {null} {whens} else {_literal(labels[-1])} end"


def _used_attributes(catalog: Catalog) -> set[str]:
    used = {d.attribute for d in catalog.dimensions}
    dims = {d.id for d in catalog.dimensions}
    for g in catalog.target_groups:
        used.update(a for a in g.where if a not in dims)
    return used | set(_REACH_INPUTS)


def segment_customers(customers: pd.DataFrame, catalog: Catalog, as_of: dt.date) -> SegmentResult:
    """Bucket every customer of ``as_of`` and evaluate the catalog's target groups.

    ``customers`` holds one row per customer with the as-of-D feature, score and customer columns
    (names as in docs/data-model.md). Attributes the catalog uses but the frame lacks are treated
    as NULL (logged), so a date without scores still segments, into the ``null_label`` buckets.
    """
    if "customer_id" not in customers.columns:
        raise MatrixInputError("segment input: column customer_id is missing")
    if customers["customer_id"].duplicated().any():
        dup = customers.loc[customers["customer_id"].duplicated(), "customer_id"].iloc[0]
        raise MatrixInputError(f"segment input for {as_of}: customer_id {dup!r} appears twice")
    con = duckdb.connect()
    try:
        return _segment(con, customers, catalog, as_of)
    finally:
        con.close()


def _segment(
    con: duckdb.DuckDBPyConnection, customers: pd.DataFrame, catalog: Catalog, as_of: dt.date
) -> SegmentResult:
    con.register("customers_in", customers)
    present = set(customers.columns)
    used = _used_attributes(catalog)
    missing = sorted(a for a in used if a not in present and a != "purchase_gap_ratio")
    if missing:
        log.warning("segment input for %s lacks %s: treated as NULL", as_of, ", ".join(missing))
    null_cols = "".join(
        f', cast(null as {_SQL_TYPES[BASE_ATTRIBUTES[a]]}) as "{a}"' for a in missing
    )
    gap = (
        ', cast("days_since_last_order" as double)'
        ' / nullif(cast("mean_interpurchase_days" as double), 0) as purchase_gap_ratio'
    )
    if "purchase_gap_ratio" in present:
        gap = ""
    elif not {"days_since_last_order", "mean_interpurchase_days"} <= present:
        gap = ", cast(null as double) as purchase_gap_ratio"
    con.execute(f"create temp table base as select *{null_cols}{gap} from customers_in")

    # per-date quantile edges and top-percent ranks: the population is this date's customers
    thresholds: dict[str, list[float]] = {}
    for d in catalog.dimensions:
        if d.quantiles is not None:
            row = con.execute(
                f'select quantile_cont("{d.attribute}", ?) from base', [list(d.quantiles)]
            ).fetchall()[0][0]
            thresholds[d.id] = [float(x) if x is not None else float("inf") for x in (row or [])]
    top_attrs = sorted(
        {a for g in catalog.target_groups for a, c in g.where.items() if c.top_pct is not None}
    )
    top_column = {a: f"__top_{a}" for a in top_attrs}
    top_sql = "".join(
        f', case when "{a}" is null then 1.0 else percent_rank() over (order by "{a}" desc'
        f' nulls last) end as "{top_column[a]}"'
        for a in top_attrs
    )
    bucket_sql = "".join(
        f', {_bucket_sql(d, thresholds.get(d.id))} as "{d.id}"' for d in catalog.dimensions
    )
    con.execute(f"create temp table bucketed as select *{bucket_sql}{top_sql} from base")

    group_flags = []
    for g in catalog.target_groups:
        conds = [s for attr, c in g.where.items() for s in _condition_sql(attr, c, top_column)]
        group_flags.append(f"case when {' and '.join(conds)} then {_literal(g.id)} end")
    groups_sql = (
        f"list_filter([{', '.join(group_flags)}], lambda x: x is not null)"
        if group_flags
        else "cast([] as varchar[])"
    )
    seg_id = " || '|' || ".join(f'"{d.id}"' for d in catalog.dimensions)
    dims = ", ".join(f'"{d.id}"' for d in catalog.dimensions)
    membership = con.execute(
        f"""
        select
            cast(? as date) as as_of_date,
            cast(customer_id as varchar) as customer_id,
            {seg_id} as micro_segment_id,
            {dims},
            cast({groups_sql} as varchar[]) as target_groups,
            coalesce(is_email_opt_in and is_email_valid and not coalesce(is_unsubscribed, false)
                and not coalesce(is_bounced, false) and not coalesce(is_spam_reported, false),
                false) as is_email_reachable,
            coalesce(is_sms_opt_in and is_phone_valid, false) as is_sms_reachable,
            true as is_direct_mail_reachable,
            days_since_last_app_open is not null as is_webhook_reachable
        from bucketed
        order by customer_id
        """,
        [as_of],
    ).df()
    con.register("membership", membership)
    micro = con.execute(
        f"""
        select as_of_date, micro_segment_id, {dims}, count(*) as customer_count
        from membership
        group by all
        order by customer_count desc, micro_segment_id
        """
    ).df()
    return SegmentResult(membership=membership, micro_segments=micro, missing_attributes=missing)
