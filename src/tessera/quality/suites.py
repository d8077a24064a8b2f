"""The expectation suites: what every landing table and mart must satisfy, with a severity per rule.

A suite is plain data (no Great Expectations objects): each rule is an aggregate SQL metric over
the table with a warn and/or error bound. Metrics are computed in DuckDB (one scan per table, so a
50M-row table never travels to pandas) and then validated by Great Expectations in
``tessera.quality.runner``. Row-level rules also carry the predicate of a bad row, so the
runner can count them exactly and show a few examples with their source file and row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    """ERROR blocks everything downstream of the asset for the run; WARN is shown but lets it flow."""

    ERROR = "error"
    WARN = "warn"


@dataclass(frozen=True)
class Thresholds:
    """The configurable bounds of the suites (defaults suit a daily shop feed)."""

    #: Share of bad rows above which a row-level rule blocks: below it the rows are a stray few
    #: that staging quarantines; above it the feed itself is broken (a column of the wrong type,
    #: a file loaded twice) and nothing downstream should run on it.
    max_bad_share: float = 0.05
    #: Referential rules (unknown customer/order) tolerate more: late-arriving parents happen.
    max_orphan_share: float = 0.10
    #: Row count / previous count outside this band blocks; outside the warn band only warns.
    row_count_error_band: tuple[float, float] = (0.5, 3.0)
    row_count_warn_band: tuple[float, float] = (0.9, 1.5)
    #: The latest event before as_of must be at most this many hours older than as_of.
    freshness_hours: float = 48.0
    #: Share of customers with a malformed (present but unusable) email / phone above which we warn.
    max_bad_contact_share: float = 0.05


@dataclass(frozen=True)
class Rule:
    """One expectation: an aggregate metric and its bounds, plus how to find the offending rows.

    ``condition`` (a SQL predicate over the suite's FROM clause) makes it a row-level rule: the
    metric is the share of rows meeting it, and ``warn_max``/``error_max`` bound that share.
    Otherwise ``metric`` is any aggregate expression bounded by ``[*_min, *_max]``.
    """

    name: str
    description: str
    condition: str | None = None
    metric: str | None = None
    warn_min: float | None = None
    warn_max: float | None = None
    error_min: float | None = None
    error_max: float | None = None
    fields: tuple[str, ...] = ()

    @property
    def metric_sql(self) -> str:
        if self.condition is not None:
            return f"coalesce(avg(case when {self.condition} then 1.0 else 0.0 end), 0.0)"
        assert self.metric is not None, f"rule {self.name} needs a condition or a metric"
        return self.metric

    @property
    def count_sql(self) -> str | None:
        if self.condition is None:
            return None
        return f"count(*) filter (where {self.condition})"


@dataclass(frozen=True)
class Suite:
    """The expectations of one table (or one partition of it)."""

    name: str
    relation: str
    required_columns: tuple[str, ...]
    rules: tuple[Rule, ...]
    #: FROM clause: the table as ``t`` plus any joins the rules need (aliases used by conditions).
    from_sql: str = ""
    where_sql: str | None = None
    #: Columns shown in example rows (besides the fields of the failing rule).
    example_columns: tuple[str, ...] = ()
    #: When set, the runner adds a row-count-change rule against this previous count.
    previous_rows: int | None = None
    notes: list[str] = field(default_factory=list)

    def from_clause(self) -> str:
        return self.from_sql or f"{self.relation} as t"


# --- SQL fragments over text columns as they landed -------------------------------------------


def _txt(col: str) -> str:
    return f"nullif(trim(t.{col}), '')"


def _ts(col: str) -> str:
    # Same parsing as dbt's parse_utc_timestamp: an explicit offset is honoured, none means UTC.
    return f"timezone('UTC', try_cast({_txt(col)} as timestamp with time zone))"


def _num(col: str) -> str:
    # Same parsing as dbt's parse_number: NaN and +-infinity (1e309 overflows to it) are no number.
    cast = f"try_cast({_txt(col)} as double)"
    return f"(case when isfinite({cast}) then {cast} end)"


def _unparseable_ts(col: str) -> str:
    return f"({_txt(col)} is not null and {_ts(col)} is null)"


def _unparseable_num(col: str) -> str:
    return f"({_txt(col)} is not null and {_num(col)} is null)"


def _missing(*cols: str) -> str:
    return "(" + " or ".join(f"{_txt(c)} is null" for c in cols) + ")"


def _not_in(expr: str, allowed: tuple[str, ...]) -> str:
    values = ", ".join(f"'{v}'" for v in allowed)
    return f"({expr} is null or {expr} not in ({values}))"


def _bad_boolean(col: str) -> str:
    return _not_in(f"lower({_txt(col)})", BOOLEAN_TEXTS)


def _lit_ts(value: str) -> str:
    return f"timestamp '{value}'"


EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "search", "app_open")
ORDER_STATUSES = ("completed", "cancelled", "refunded")
CHANNELS = ("email", "sms", "direct_mail", "webhook")
RESPONSE_EVENTS = (
    "delivered", "open", "click", "bounce", "unsubscribe", "spam_report", "conversion",
)  # fmt: skip
EMAIL_PATTERN = r"[^@\s]+@[^@\s]+\.[^@\s]+"
PHONE_PATTERN = r"\+?[0-9][0-9 ()./-]{5,}[0-9]"
BOOLEAN_TEXTS = ("true", "false", "t", "f", "yes", "no", "y", "n", "1", "0")


@dataclass(frozen=True)
class Clock:
    """The times a suite is judged against: the campaign date (if the run has one) and now."""

    now: str  # 'YYYY-MM-DD HH:MM:SS', UTC
    as_of: str | None = None  # 'YYYY-MM-DD' (partition key), data strictly before it


def _row_level(
    name: str, description: str, condition: str, fields: tuple[str, ...], error_max: float | None
) -> Rule:
    """A row-level rule: any bad row warns (it is quarantined); too many block."""
    return Rule(name, description, condition=condition, warn_max=0.0, error_max=error_max,
                fields=fields)  # fmt: skip


def _rows_rule(table: str, minimum: int = 1) -> Rule:
    return Rule(
        "row_count",
        f"{table} has at least {minimum} row(s)",
        metric="count(*)",
        error_min=float(minimum),
    )


def _future(table: str, col: str, clock: Clock, th: Thresholds) -> Rule:
    return _row_level(
        f"future_{col}",
        f"{table}: {col} is later than now ({clock.now} UTC); such rows are quarantined",
        f"{_ts(col)} > {_lit_ts(clock.now)}",
        (col,),
        th.max_bad_share,
    )


def _freshness(table: str, col: str, clock: Clock, th: Thresholds) -> Rule | None:
    if clock.as_of is None:
        return None
    as_of = _lit_ts(f"{clock.as_of} 00:00:00")
    latest = f"max({_ts(col)}) filter (where {_ts(col)} < {as_of})"
    return Rule(
        f"freshness_{col}",
        f"{table}: hours between the latest {col} before {clock.as_of} and {clock.as_of} 00:00 "
        f"(at most {th.freshness_hours:g})",
        metric=f"coalesce(date_diff('second', {latest}, {as_of}) / 3600.0, 1e9)",
        error_max=th.freshness_hours,
        fields=(col,),
    )


def raw_suite(table: str, clock: Clock, th: Thresholds | None = None) -> Suite:
    """The contract of one landing table (``raw.<table>``, every column text as landed)."""
    th = th or Thresholds()
    builders = {
        "customers": _raw_customers,
        "orders": _raw_orders,
        "order_items": _raw_order_items,
        "events": _raw_events,
        "campaign_responses": _raw_campaign_responses,
    }
    if table not in builders:
        raise ValueError(f"no quality suite for landing table '{table}'")
    return builders[table](clock, th)


def _with_copy_rank(relation: str, key: str) -> str:
    """The table as ``t`` with ``_copy``: 1 for the first landed row of a key, 2+ for repeats.

    Like staging, the first copy in landing order (file, row) is the one kept.
    """
    return (
        f"(select *, case when nullif(trim({key}), '') is not null then row_number() over "
        f"(partition by trim({key}) order by _source_file, _source_row) end as _copy "
        f"from {relation}) as t"
    )


def _with_customer_conflicts(relation: str) -> str:
    """The customers as ``t`` with ``_conflict``: true for a copy of a customer_id that
    disagrees with the first copy in the same file at the same updated_at (staging's
    duplicate_key). The values are compared about as staging normalises them."""
    state = ", ".join(
        f"coalesce({expr}, chr(0))"
        for expr in (
            "lower(trim(email))",
            "regexp_replace(phone, '[^0-9]', '', 'g')",
            "trim(created_at)",
            "upper(trim(country))",
            "trim(first_name)",
            "lower(trim(email_opt_in))",
            "lower(trim(sms_opt_in))",
        )
    )
    state = f"concat_ws(chr(31), {state})"
    return (
        f"(select *, nullif(trim(customer_id), '') is not null and {state} <> first_value({state}) "
        "over (partition by trim(customer_id), _source_file, nullif(trim(updated_at), '') "
        f"order by _source_row) as _conflict from {relation}) as t"
    )


def _parent_join(relation: str, key: str, alias: str, child_key: str | None = None) -> str:
    child_key = child_key or key
    return (
        f" left join (select distinct trim({key}) as k from {relation}) as {alias} "
        f"on trim(t.{child_key}) = {alias}.k"
    )


def _raw_customers(clock: Clock, th: Thresholds) -> Suite:
    rules = [
        _rows_rule("customers"),
        _row_level("missing_customer_id", "customers without a customer_id",
                   _missing("customer_id"), ("customer_id",), th.max_bad_share),
        _row_level("duplicate_customer_id",
                   "copies of a customer_id in one file at the same updated_at that disagree "
                   "with the first (later files and updated_at values are updates, identical "
                   "copies re-sends: neither counts)",
                   "t._conflict", ("customer_id", "updated_at"), th.max_bad_share),
        _row_level("unparseable_created_at", "customers whose created_at is not a timestamp",
                   _unparseable_ts("created_at"), ("created_at",), th.max_bad_share),
        _future("customers", "created_at", clock, th),
        Rule("invalid_email", "customers whose email is present but malformed",
             condition=f"not regexp_full_match({_txt('email')}, '{EMAIL_PATTERN}')",
             warn_max=th.max_bad_contact_share, fields=("email",)),
        Rule("invalid_phone", "customers whose phone is present but malformed",
             condition=f"not regexp_full_match({_txt('phone')}, '{PHONE_PATTERN}')",
             warn_max=th.max_bad_contact_share, fields=("phone",)),
        Rule("unparseable_opt_in", "customers whose email_opt_in/sms_opt_in is not a yes/no value",
             condition=f"({_bad_boolean('email_opt_in')} or {_bad_boolean('sms_opt_in')})",
             warn_max=0.0, fields=("email_opt_in", "sms_opt_in")),
    ]  # fmt: skip
    return Suite(
        name="raw_customers",
        relation="raw.customers",
        required_columns=("customer_id", "email", "phone", "created_at", "country",
                          "email_opt_in", "sms_opt_in"),
        rules=tuple(rules),
        from_sql=_with_customer_conflicts("raw.customers"),
        example_columns=("customer_id",),
    )  # fmt: skip


def _raw_orders(clock: Clock, th: Thresholds) -> Suite:
    rules = [
        _rows_rule("orders"),
        _row_level("missing_key", "orders without an order_id or customer_id",
                   _missing("order_id", "customer_id"), ("order_id", "customer_id"),
                   th.max_bad_share),
        _row_level("duplicate_order_id", "repeated copies of an order_id (first copy kept)",
                   "t._copy > 1", ("order_id",), th.max_bad_share),
        _row_level("unparseable_ordered_at", "orders whose ordered_at is missing or not a timestamp",
                   f"{_ts('ordered_at')} is null", ("ordered_at",), th.max_bad_share),
        _row_level("unparseable_amount", "orders whose amount is missing or not a number",
                   f"{_num('amount')} is null", ("amount",), th.max_bad_share),
        _row_level("negative_amount", "orders with a negative amount",
                   f"{_num('amount')} < 0", ("amount",), th.max_bad_share),
        _row_level("invalid_status", f"orders whose status is not one of {', '.join(ORDER_STATUSES)}",
                   _not_in(f"lower({_txt('status')})", ORDER_STATUSES), ("status",),
                   th.max_bad_share),
        _row_level("unknown_customer", "orders whose customer_id is not in customers",
                   f"{_txt('customer_id')} is not null and cust.k is null", ("customer_id",),
                   th.max_orphan_share),
        _future("orders", "ordered_at", clock, th),
    ]  # fmt: skip
    return Suite(
        name="raw_orders",
        relation="raw.orders",
        required_columns=("order_id", "customer_id", "ordered_at", "amount", "currency", "status"),
        rules=tuple(rules),
        from_sql=_with_copy_rank("raw.orders", "order_id")
        + _parent_join("raw.customers", "customer_id", "cust"),
        example_columns=("order_id", "customer_id"),
    )


def _raw_order_items(clock: Clock, th: Thresholds) -> Suite:
    rules = [
        _rows_rule("order_items"),
        _row_level("missing_key", "order lines without an order_id or product_id",
                   _missing("order_id", "product_id"), ("order_id", "product_id"),
                   th.max_bad_share),
        _row_level("invalid_quantity", "order lines whose quantity is not a number above 0",
                   f"coalesce({_num('quantity')} <= 0, true)", ("quantity",), th.max_bad_share),
        _row_level("invalid_unit_price", "order lines whose unit_price is not a number >= 0",
                   f"coalesce({_num('unit_price')} < 0, true)", ("unit_price",),
                   th.max_bad_share),
        _row_level("unknown_order", "order lines whose order_id is not in orders",
                   f"{_txt('order_id')} is not null and ord.k is null", ("order_id",),
                   th.max_orphan_share),
    ]  # fmt: skip
    return Suite(
        name="raw_order_items",
        relation="raw.order_items",
        required_columns=("order_id", "product_id", "category", "quantity", "unit_price"),
        rules=tuple(rules),
        from_sql="raw.order_items as t" + _parent_join("raw.orders", "order_id", "ord"),
        example_columns=("order_id", "product_id"),
    )


def _raw_events(clock: Clock, th: Thresholds) -> Suite:
    rules = [
        _rows_rule("events"),
        _row_level("missing_customer_id", "events without a customer_id",
                   _missing("customer_id"), ("customer_id",), th.max_bad_share),
        _row_level("unparseable_occurred_at", "events whose occurred_at is missing or not a timestamp",
                   f"{_ts('occurred_at')} is null", ("occurred_at",), th.max_bad_share),
        _row_level("invalid_event_type", f"events whose event_type is not one of {', '.join(EVENT_TYPES)}",
                   _not_in(f"lower({_txt('event_type')})", EVENT_TYPES), ("event_type",),
                   th.max_bad_share),
        _row_level("unknown_customer", "events whose customer_id is not in customers",
                   f"{_txt('customer_id')} is not null and cust.k is null", ("customer_id",),
                   th.max_orphan_share),
        _future("events", "occurred_at", clock, th),
    ]  # fmt: skip
    fresh = _freshness("events", "occurred_at", clock, th)
    return Suite(
        name="raw_events",
        relation="raw.events",
        required_columns=("customer_id", "occurred_at", "event_type", "category"),
        rules=tuple(rules + ([fresh] if fresh else [])),
        from_sql="raw.events as t" + _parent_join("raw.customers", "customer_id", "cust"),
        example_columns=("customer_id",),
    )


def _raw_campaign_responses(clock: Clock, th: Thresholds) -> Suite:
    rules = [
        _rows_rule("campaign_responses", minimum=0),
        _row_level("missing_key", "responses without a message_id or customer_id",
                   _missing("message_id", "customer_id"), ("message_id", "customer_id"),
                   th.max_bad_share),
        _row_level("invalid_channel", f"responses whose channel is not one of {', '.join(CHANNELS)}",
                   _not_in(f"lower({_txt('channel')})", CHANNELS), ("channel",), th.max_bad_share),
        _row_level("invalid_event", f"responses whose event is not one of {', '.join(RESPONSE_EVENTS)}",
                   _not_in(f"lower({_txt('event')})", RESPONSE_EVENTS), ("event",),
                   th.max_bad_share),
        _row_level("unparseable_occurred_at", "responses whose occurred_at is missing or not a timestamp",
                   f"{_ts('occurred_at')} is null", ("occurred_at",), th.max_bad_share),
        _row_level("unknown_customer", "responses whose customer_id is not in customers",
                   f"{_txt('customer_id')} is not null and cust.k is null", ("customer_id",),
                   th.max_orphan_share),
        _future("campaign_responses", "occurred_at", clock, th),
    ]  # fmt: skip
    return Suite(
        name="raw_campaign_responses",
        relation="raw.campaign_responses",
        required_columns=("message_id", "customer_id", "campaign_id", "channel", "event",
                          "occurred_at"),
        rules=tuple(rules),
        from_sql="raw.campaign_responses as t" + _parent_join("raw.customers", "customer_id", "cust"),
        example_columns=("message_id", "customer_id"),
    )  # fmt: skip


# --- marts (typed) -----------------------------------------------------------------------------


def _strict(name: str, description: str, condition: str, fields: tuple[str, ...]) -> Rule:
    """A mart invariant: no row may break it (the quarantine should have caught it upstream)."""
    return Rule(name, description, condition=condition, error_max=0.0, fields=fields)


def _unique_join(relation: str, keys: tuple[str, ...], where: str | None = None) -> str:
    cols = ", ".join(keys)
    on = " and ".join(f"t.{k} = dup.{k}" for k in keys)
    filt = f" where {where}" if where else ""
    return (
        f" left join (select {cols}, count(*) as n from {relation}{filt} group by {cols}) as dup "
        f"on {on}"
    )


def mart_suite(
    table: str, clock: Clock, th: Thresholds | None = None, columns: tuple[str, ...] = ()
) -> Suite:
    """The invariants of one mart; ``customer_features`` is judged for partition ``clock.as_of``."""
    th = th or Thresholds()
    if table == "dim_customers":
        return Suite(
            name="dim_customers",
            relation="marts.dim_customers",
            required_columns=("customer_id", "email", "created_at", "is_email_valid"),
            rules=(
                _rows_rule("dim_customers"),
                _strict("null_customer_id", "customers without a customer_id",
                        "t.customer_id is null", ("customer_id",)),
                _strict("duplicate_customer_id", "customer_id appears more than once",
                        "dup.n > 1", ("customer_id",)),
                _strict("null_created_at", "customers without created_at",
                        "t.created_at is null", ("created_at",)),
                Rule("invalid_email", "customers without a valid email (cannot be emailed)",
                     condition="not coalesce(t.is_email_valid, false)",
                     warn_max=th.max_bad_contact_share, fields=("email",)),
            ),
            from_sql="marts.dim_customers as t"
            + _unique_join("marts.dim_customers", ("customer_id",)),
            example_columns=("customer_id",),
        )  # fmt: skip
    if table == "fct_orders":
        return Suite(
            name="fct_orders",
            relation="marts.fct_orders",
            required_columns=("order_id", "customer_id", "ordered_at", "amount", "status"),
            rules=(
                _rows_rule("fct_orders"),
                _strict("null_key", "orders without order_id or customer_id",
                        "t.order_id is null or t.customer_id is null", ("order_id", "customer_id")),
                _strict("duplicate_order_id", "order_id appears more than once", "dup.n > 1",
                        ("order_id",)),
                _strict("invalid_amount", "orders with a missing or negative amount",
                        "coalesce(t.amount < 0, true)", ("amount",)),
                _strict("invalid_status", f"status not one of {', '.join(ORDER_STATUSES)}",
                        _not_in("t.status", ORDER_STATUSES), ("status",)),
                _strict("future_ordered_at", f"ordered_at later than now ({clock.now} UTC)",
                        f"t.ordered_at > {_lit_ts(clock.now)}", ("ordered_at",)),
                _strict("unknown_customer", "customer_id not in dim_customers",
                        "cust.customer_id is null", ("customer_id",)),
            ),
            from_sql="marts.fct_orders as t"
            + _unique_join("marts.fct_orders", ("order_id",))
            + " left join marts.dim_customers as cust on t.customer_id = cust.customer_id",
            example_columns=("order_id", "customer_id"),
        )  # fmt: skip
    if table == "fct_order_items":
        return Suite(
            name="fct_order_items",
            relation="marts.fct_order_items",
            required_columns=("order_id", "product_id", "quantity", "unit_price"),
            rules=(
                _strict("invalid_quantity", "order lines whose quantity is not above 0",
                        "coalesce(t.quantity <= 0, true)", ("quantity",)),
                _strict("invalid_unit_price", "order lines with a missing or negative unit_price",
                        "coalesce(t.unit_price < 0, true)", ("unit_price",)),
                _strict("unknown_order", "order lines whose order_id is not in fct_orders",
                        "ord.order_id is null", ("order_id",)),
            ),
            from_sql="marts.fct_order_items as t"
            + " left join marts.fct_orders as ord on t.order_id = ord.order_id",
            example_columns=("order_id", "product_id"),
        )  # fmt: skip
    if table == "customer_features":
        return _customer_features(clock, th, columns)
    raise ValueError(f"no quality suite for mart '{table}'")


_NON_NEGATIVE = (
    "tenure_days", "orders_30d", "orders_90d", "orders_365d", "orders_total", "revenue_30d",
    "revenue_90d", "revenue_365d", "revenue_total", "days_since_last_order",
    "days_since_first_order", "events_7d", "events_30d", "days_since_last_event",
)  # fmt: skip


def _customer_features(clock: Clock, th: Thresholds, columns: tuple[str, ...]) -> Suite:
    if clock.as_of is None:
        raise ValueError("customer_features is judged per campaign date: the clock needs as_of")
    as_of = f"date '{clock.as_of}'"
    part = f"as_of_date = {as_of}"
    present = set(columns) or set(_NON_NEGATIVE)
    rules: list[Rule] = [
        _rows_rule(f"customer_features for {clock.as_of}"),
        _strict("null_customer_id", "rows without a customer_id", "t.customer_id is null",
                ("customer_id",)),
        _strict("duplicate_customer_id", "customer_id appears more than once in the partition",
                "dup.n > 1", ("customer_id",)),
        Rule("customers_covered",
             f"rows / customers created before {clock.as_of} (every such customer has one row)",
             metric=f"count(*) / greatest((select count(*) from marts.dim_customers "
                    f"where created_at < {as_of}), 1)",
             error_min=1.0, error_max=1.0),
    ]  # fmt: skip
    for col in _NON_NEGATIVE:
        if col in present:
            rules.append(
                _strict(f"negative_{col}", f"{col} below 0 (would mean data at or after as_of)",
                        f"t.{col} < 0", (col,))
            )  # fmt: skip
    shares = sorted(c for c in present if c.startswith("share_")) + [
        c for c in ("cart_abandonment_rate_30d",) if c in present
    ]
    for col in shares:
        rules.append(
            _strict(f"{col}_out_of_range", f"{col} outside [0, 1]",
                    f"t.{col} < 0 or t.{col} > 1", (col,))
        )  # fmt: skip
    return Suite(
        name="customer_features",
        relation="marts.customer_features",
        required_columns=("as_of_date", "customer_id", "tenure_days"),
        rules=tuple(rules),
        from_sql="marts.customer_features as t"
        + _unique_join("marts.customer_features", ("customer_id",), where=part),
        where_sql=f"t.{part}",
        example_columns=("as_of_date", "customer_id"),
    )
