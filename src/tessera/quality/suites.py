"""The expectation suites: what every landing table and mart must satisfy, with a severity per rule.

A suite is plain data (no Great Expectations objects): each rule is a row predicate, a row count
or a column minimum over the table, with a warn and/or error bound. The landing tables' row rules
are the rule registry's (rules.yml), judged over the landed text parsed as staging parses it; the
marts' keys, nulls, references and accepted values are the dbt tests of _marts.yml.
``tessera.quality.runner`` turns a suite into Great Expectations expectations that GE's SQL
datasource runs in DuckDB over the table's rows (nothing large travels to pandas); row rules
also carry the predicate of a bad row, so a few examples can be shown with their source file
and row.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import yaml

from tessera.quality.phones import phone_sql
from tessera.quality.registry import RowRule, quoted, registry
from tessera.settings import DBT_PROJECT_DIR
from tessera.warehouse.landing import CONTRACT


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
    """One expectation, with a warn and/or an error bound, of one of three kinds:

    * ``condition`` (a SQL predicate over the suite's FROM clause): a row rule; the share of rows
      meeting it is bounded by ``warn_max``/``error_max``, and the rows themselves can be shown;
    * ``rows_per`` (scalar SQL, "1" for a plain count): the table's row count divided by it is
      bounded by ``[*_min, *_max]``;
    * ``column_min`` (SQL over one row): its smallest value over the rows is bounded by
      ``[*_min, *_max]``, or ``empty_value`` stands for it when no row has one.

    Each becomes a Great Expectations expectation over the warehouse table (runner.py).
    """

    name: str
    description: str
    condition: str | None = None
    rows_per: str | None = None
    column_min: str | None = None
    empty_value: float | None = None
    warn_min: float | None = None
    warn_max: float | None = None
    error_min: float | None = None
    error_max: float | None = None
    fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        kinds = [k for k in (self.condition, self.rows_per, self.column_min) if k is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"rule {self.name}: needs exactly one of condition, rows_per and column_min"
            )


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
    #: Builds the FROM clause from the columns the table has (the landing tables' suites).
    from_builder: Callable[[tuple[str, ...]], str] | None = None
    #: Materialise the FROM clause once per validation (costly relations read by several queries).
    materialise: bool = False

    def from_clause(self, columns: tuple[str, ...] = ()) -> str:
        if self.from_builder is not None:
            return self.from_builder(columns)
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


def _not_in(expr: str, allowed: tuple[str, ...]) -> str:
    return f"({expr} is null or {expr} not in ({quoted(allowed)}))"


def _lit_ts(value: str) -> str:
    return f"timestamp '{value}'"


_REGISTRY = registry()
ORDER_STATUSES = _REGISTRY.accepted("orders", "invalid_status")


@dataclass(frozen=True)
class Clock:
    """The times a suite is judged against: the campaign date (if the run has one) and now."""

    now: str  # 'YYYY-MM-DD HH:MM:SS', UTC
    as_of: str | None = None  # 'YYYY-MM-DD' (partition key), data strictly before it


def _rows_rule(table: str, minimum: int = 1) -> Rule:
    return Rule(
        "row_count",
        f"{table} has at least {minimum} row(s)",
        rows_per="1",
        error_min=float(minimum),
    )


def _freshness(table: str, col: str, clock: Clock, th: Thresholds) -> Rule | None:
    if clock.as_of is None:
        return None
    as_of = _lit_ts(f"{clock.as_of} 00:00:00")
    # Hours from each row's time to D; the smallest is the latest row's. No row before D: 1e9.
    hours = f"date_diff('second', {_ts(col)}, {as_of}) / 3600.0"
    return Rule(
        f"freshness_{col}",
        f"{table}: hours between the latest {col} before {clock.as_of} and {clock.as_of} 00:00 "
        f"(at most {th.freshness_hours:g})",
        column_min=f"coalesce(case when {_ts(col)} < {as_of} then {hours} end, 1e9)",
        empty_value=1e9,
        error_max=th.freshness_hours,
        fields=(col,),
    )


# --- the landing tables: the registry's row rules over the landed text, parsed as staging does ---


def _bool(col: str, value: bool) -> str:
    return f"lower(trim(t.{col})) in ({quoted(_REGISTRY.booleans[value])})"


def _parse_boolean(col: str) -> str:
    return f"(case when {_bool(col, True)} then true when {_bool(col, False)} then false end)"


def _phone(phone: str, country: str) -> str:
    """dbt's normalise_phone (both are tessera.quality.phones)."""
    return phone_sql(f"nullif(trim(t.{phone}), '')", f"t.{country}")


def _matches(expr: str, table: str, code: str) -> str:
    pattern = _REGISTRY.rule(table, code).pattern
    return f"coalesce(regexp_full_match({expr}, '{pattern}'), false)"


#: Per landing table, the parsed columns the registry's predicates read, as the base_shop__<table>
#: models of staging compute them (``t`` is the landed row).
_PARSED: dict[str, dict[str, str]] = {
    "customers": {
        "customer_id": _txt("customer_id"),
        "email": "nullif(lower(trim(t.email)), '')",
        "phone": _phone("phone", "country"),
        "created_at": _ts("created_at"),
        "country": "nullif(upper(trim(t.country)), '')",
        "first_name": _txt("first_name"),
        "is_email_opt_in": f"coalesce({_parse_boolean('email_opt_in')}, false)",
        "is_sms_opt_in": f"coalesce({_parse_boolean('sms_opt_in')}, false)",
        "is_opt_in_unparseable": (
            f"({_parse_boolean('email_opt_in')} is null and {_txt('email_opt_in')} is not null) "
            f"or ({_parse_boolean('sms_opt_in')} is null and {_txt('sms_opt_in')} is not null)"
        ),
        "updated_at": _ts("updated_at"),
        "updated_at_text": _txt("updated_at"),
    },
    "orders": {
        "order_id": _txt("order_id"),
        "customer_id": _txt("customer_id"),
        "ordered_at": _ts("ordered_at"),
        "amount": _num("amount"),
        "status": "lower(trim(t.status))",
    },
    "order_items": {
        "order_id": _txt("order_id"),
        "product_id": _txt("product_id"),
        "category": "nullif(lower(trim(t.category)), '')",
        "quantity": _num("quantity"),
        "unit_price": _num("unit_price"),
    },
    "events": {
        "customer_id": _txt("customer_id"),
        "occurred_at": _ts("occurred_at"),
        "event_type": "lower(trim(t.event_type))",
        "category": "nullif(lower(trim(t.category)), '')",
    },
    "campaign_responses": {
        "message_id": _txt("message_id"),
        "customer_id": _txt("customer_id"),
        "campaign_id": _txt("campaign_id"),
        "channel": "lower(trim(t.channel))",
        "event": "lower(trim(t.event))",
        "occurred_at": _ts("occurred_at"),
        "revenue_text": _txt("revenue"),
        "revenue": _num("revenue"),
    },
}

#: The parent a landing table's rows must reference: (flag, parent table, key).
_PARENTS: dict[str, tuple[str, str, str]] = {
    "orders": ("is_known_customer", "customers", "customer_id"),
    "events": ("is_known_customer", "customers", "customer_id"),
    "campaign_responses": ("is_known_customer", "customers", "customer_id"),
    "order_items": ("is_known_order", "orders", "order_id"),
}

#: What a customer copy says about the customer (staging's content_hash): copies with the same
#: values are the same state.
_CUSTOMER_CONTENT = ("email", "phone", "created_at", "country", "first_name", "is_email_opt_in",
                     "is_sms_opt_in")  # fmt: skip


def _flag(code: str) -> str:
    return f"rule__{code}"


def _passes_pre_duplicate(rules: tuple[RowRule, ...], max_ts: str) -> str:
    """staging's passes_pre_duplicate_rules: no blocking rule but duplicate_key is broken."""
    broken = " or ".join(
        f"coalesce({r.condition(max_ts)}, false)"
        for r in rules
        if r.blocking and r.code != "duplicate_key"
    )
    return f"not ({broken})"


def _landed_relation(table: str, clock: Clock, landed: tuple[str, ...]) -> str:
    """The landing table as ``t``: its landed text, ``_source_file``/``_source_row``, and one
    boolean ``rule__<code>`` per registry rule, judged as staging judges the row.

    Only known parents are landed ones (staging knows only staged ones): the gate runs before
    staging, and a parent that staging quarantines shows up under its own table's rules.
    """
    rules = _REGISTRY.rules(table)
    max_ts = _lit_ts(clock.now)
    present = set(landed)
    columns = [c for c in CONTRACT[table].columns]
    source = ", ".join(
        (f"{c}" if c in present else f"cast(null as varchar) as {c}") for c in columns
    )
    parsed = ", ".join(f"{expr} as p__{name}" for name, expr in _PARSED[table].items())
    sql = (
        f"select t.*, {parsed} from (select {source}, _source_file, _source_row "
        f"from raw.{table}) as t"
    )
    # Predicates read the parsed names: expose them unprefixed beside the landed text.
    renames = ", ".join(f"p__{name} as {name}" for name in _PARSED[table])
    landed_cols = ", ".join(f"{c} as l__{c}" for c in columns)
    sql = f"select {landed_cols}, _source_file, _source_row, {renames} from ({sql}) as s"
    if table in _PARENTS:
        flag, parent, key = _PARENTS[table]
        sql = (
            f"select c.*, parent.k is not null as {flag} from ({sql}) as c left join "
            f"(select distinct nullif(trim({key}), '') as k from raw.{parent}) as parent "
            f"on c.{key} = parent.k"
        )
    if table == "customers":
        sql = (
            f"select v.*, {_matches('email', table, 'bad_email')} as is_email_valid, "
            f"{_matches('phone', table, 'bad_phone')} as is_phone_valid from ({sql}) as v"
        )
    # Whether the row breaks no blocking rule but duplicate_key, computed once per row.
    sql = f"select g.*, {_passes_pre_duplicate(rules, max_ts)} as is_good_copy from ({sql}) as g"
    good = "is_good_copy"
    if table == "customers":
        content = ", ".join(
            f"coalesce('=' || cast({c} as varchar), '~')" for c in _CUSTOMER_CONTENT
        )
        content = f"concat_ws(chr(31), {content})"
        ranked = (
            f"case when {good} then {content} <> first_value({content}) over (partition by "
            f"customer_id, _source_file, updated_at, {good} order by _source_row) end "
            "as is_conflicting_copy"
        )
    else:
        key = ", ".join(_REGISTRY.rule(table, "duplicate_key").key)
        ranked = (
            f"case when {good} then row_number() over (partition by {key}, {good} "
            "order by _source_file, _source_row) end as key_rank"
        )
    sql = f"select *, {ranked} from ({sql}) as r"
    flags = ", ".join(f"coalesce({r.condition(max_ts)}, false) as {_flag(r.code)}" for r in rules)
    out = ", ".join(f"l__{c} as {c}" for c in columns)
    return f"(select {out}, _source_file, _source_row, {flags} from ({sql}) as k) as t"


def _gate_bounds(rule: RowRule, th: Thresholds) -> dict[str, float]:
    if rule.gate == "bad_share":
        return {"warn_max": 0.0, "error_max": th.max_bad_share}
    if rule.gate == "orphan_share":
        return {"warn_max": 0.0, "error_max": th.max_orphan_share}
    if rule.gate == "contact_share":
        return {"warn_max": th.max_bad_contact_share}
    return {"warn_max": 0.0}


def _registry_rule(rule: RowRule, th: Thresholds) -> Rule:
    return Rule(
        rule.code,
        f"{rule.table}: {rule.meaning}"
        + ("" if rule.blocking else " (staged with a flag, not quarantined)"),
        condition=f"t.{_flag(rule.code)}",
        fields=rule.columns,
        **_gate_bounds(rule, th),
    )


#: Landing tables whose latest timestamp must be fresh for the campaign date.
_FRESHNESS = {"events": "occurred_at"}
#: Landing tables that may be empty (optional sources whose absence the checks handle).
_MAY_BE_EMPTY = {"campaign_responses"}
_EXAMPLE_COLUMNS = {
    "customers": ("customer_id",),
    "orders": ("order_id", "customer_id"),
    "order_items": ("order_id", "product_id"),
    "events": ("customer_id",),
    "campaign_responses": ("message_id", "customer_id"),
}


def raw_suite(table: str, clock: Clock, th: Thresholds | None = None) -> Suite:
    """The contract of one landing table (``raw.<table>``, every column text as landed): its
    columns, row count, freshness, and every row rule of the registry (rules.yml)."""
    th = th or Thresholds()
    if table not in _PARSED:
        raise ValueError(f"no quality suite for landing table '{table}'")
    rules = [_rows_rule(table, minimum=0 if table in _MAY_BE_EMPTY else 1)]
    rules += [_registry_rule(r, th) for r in _REGISTRY.rules(table)]
    if table in _FRESHNESS:
        fresh = _freshness(table, _FRESHNESS[table], clock, th)
        rules += [fresh] if fresh else []
    return Suite(
        name=f"raw_{table}",
        relation=f"raw.{table}",
        required_columns=CONTRACT[table].required,
        rules=tuple(rules),
        from_builder=lambda landed: _landed_relation(table, clock, landed),
        materialise=True,
        example_columns=_EXAMPLE_COLUMNS[table],
    )


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


#: The dbt tests of the marts (keys, nulls, references, accepted values) are defined once, in
#: _marts.yml; the mart suites run the same tests as expectations, beside the value ranges no
#: dbt test states.
MARTS_YML = DBT_PROJECT_DIR / "models" / "marts" / "_marts.yml"


@functools.cache
def _mart_column_tests(path: Path = MARTS_YML) -> dict[str, tuple[tuple[str, object], ...]]:
    """Per mart model, its column tests as (column, test) pairs, in file order."""
    with path.open(encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    tests: dict[str, tuple[tuple[str, object], ...]] = {}
    for model in doc.get("models", []):
        pairs = []
        for column in model.get("columns", []) or []:
            for test in column.get("data_tests", []) or []:
                pairs.append((column["name"], test))
        tests[model["name"]] = tuple(pairs)
    return tests


def _ref_model(ref: str) -> str:
    match = re.fullmatch(r"ref\('([a-z0-9_]+)'\)", ref.strip())
    if not match:
        raise ValueError(f"{MARTS_YML.name}: relationships to {ref!r} is not a ref('<model>')")
    return match.group(1)


def _yml_rules(table: str) -> tuple[list[Rule], list[tuple[tuple[str, ...], str]]]:
    """The expectations of a mart's dbt column tests, and the joins they need (with the
    columns each join reads)."""
    rules: list[Rule] = []
    joins: list[tuple[tuple[str, ...], str]] = []
    for col, test in _mart_column_tests().get(table, ()):
        name, args = (test, {}) if isinstance(test, str) else next(iter(test.items()))
        args = (args or {}).get("arguments", args or {})
        if name == "not_null":
            rules.append(_strict(f"null_{col}", f"{col} is null", f"t.{col} is null", (col,)))
        elif name == "unique":
            alias = f"dup_{col}"
            joins.append(
                (
                    (col,),
                    f" left join (select {col}, count(*) as n from marts.{table} "
                    f"group by {col}) as {alias} on t.{col} = {alias}.{col}",
                )
            )
            rules.append(
                _strict(
                    f"duplicate_{col}", f"{col} appears more than once", f"{alias}.n > 1", (col,)
                )
            )
        elif name == "relationships":
            parent, field_ = _ref_model(args["to"]), args["field"]
            alias = f"ref_{col}"
            joins.append(
                (
                    (col,),
                    f" left join (select distinct {field_} as k from marts.{parent}) "
                    f"as {alias} on t.{col} = {alias}.k",
                )
            )
            rules.append(
                _strict(
                    f"unknown_{field_.removesuffix('_id')}",
                    f"{col} not in {parent}.{field_}",
                    f"t.{col} is not null and {alias}.k is null",
                    (col,),
                )
            )
        elif name == "values_allowed_by_rule":
            allowed = _REGISTRY.accepted(args["table"], args["code"])
            rules.append(
                _strict(
                    args["code"],
                    f"{col} not one of {', '.join(allowed)}",
                    f"t.{col} not in ({quoted(allowed)})",
                    (col,),
                )
            )
    return rules, joins  # fmt: skip


def _yml_from(table: str, joins: list[tuple[tuple[str, ...], str]]) -> Callable:
    def build(columns: tuple[str, ...]) -> str:
        present = set(columns)
        return f"marts.{table} as t" + "".join(j for cols, j in joins if set(cols) <= present)

    return build


def _mart(
    table: str,
    required: tuple[str, ...],
    extra: list[Rule],
    example_columns: tuple[str, ...],
    row_count: bool = True,
) -> Suite:
    rules, joins = _yml_rules(table)
    head = [_rows_rule(table)] if row_count else []
    return Suite(
        name=table,
        relation=f"marts.{table}",
        required_columns=required,
        rules=tuple(head + rules + extra),
        from_builder=_yml_from(table, joins),
        example_columns=example_columns,
    )  # fmt: skip


def mart_suite(
    table: str, clock: Clock, th: Thresholds | None = None, columns: tuple[str, ...] = ()
) -> Suite:
    """The invariants of one mart; ``customer_features`` is judged for partition ``clock.as_of``.

    Keys, nulls, references and accepted values are _marts.yml's dbt tests (run here as
    expectations, rules named null_/duplicate_/unknown_ and the registry's code); value ranges
    are stated here. Rules on columns the table lacks are not judged."""
    th = th or Thresholds()
    if table == "dim_customers":
        return _mart("dim_customers", ("customer_id", "email", "created_at", "is_email_valid"), [
            Rule("invalid_email", "customers without a valid email (cannot be emailed)",
                 condition="not coalesce(t.is_email_valid, false)",
                 warn_max=th.max_bad_contact_share, fields=("email",)),
        ], ("customer_id",))  # fmt: skip
    if table == "fct_orders":
        return _mart("fct_orders", ("order_id", "customer_id", "ordered_at", "amount", "status"), [
            _strict("invalid_amount", "orders with a missing or negative amount",
                    "coalesce(t.amount < 0, true)", ("amount",)),
            _strict("future_timestamp", f"ordered_at at or after now ({clock.now} UTC)",
                    f"t.ordered_at >= {_lit_ts(clock.now)}", ("ordered_at",)),
        ], ("order_id", "customer_id"))  # fmt: skip
    if table == "fct_order_items":
        return _mart("fct_order_items", ("order_id", "product_id", "quantity", "unit_price"), [
            # The registry's meaning (staging quarantines quantity < 0 and keeps 0, e.g. a
            # free gift line): a zero line that staging kept must not block the run here.
            _strict("negative_quantity", "order lines with a missing or negative quantity",
                    "coalesce(t.quantity < 0, true)", ("quantity",)),
            _strict("invalid_unit_price", "order lines with a missing or negative unit_price",
                    "coalesce(t.unit_price < 0, true)", ("unit_price",)),
        ], ("order_id", "product_id"), row_count=False)  # fmt: skip
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
             rows_per=f"greatest((select count(*) from marts.dim_customers "
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
