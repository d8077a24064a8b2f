"""Runs a suite: Great Expectations over the warehouse table, with counts and example rows.

Great Expectations is imported inside the functions that need it (its import takes seconds), so
importing this module stays cheap.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from tessera.quality.gx_sql import (
    Expectation,
    GxRun,
    count_bounds,
    scratch_table,
    validate_table,
)
from tessera.quality.suites import Rule, Severity, Suite, Thresholds
from tessera.reporting import markdown_table

log = logging.getLogger(__name__)

#: Where row counts of accepted runs are kept, to judge the next run's change.
ROW_COUNTS_TABLE = "quality.row_counts"


class QualityError(ValueError):
    """A suite cannot be evaluated at all (for example, its table is missing)."""


@dataclass
class RuleOutcome:
    """How one rule fared: the observed metric against its bounds."""

    rule: str
    description: str
    severity: Severity | None  # None: passed
    observed: float | None
    expected: str
    bad_rows: int | None = None
    fields: tuple[str, ...] = ()
    is_share: bool = False

    @property
    def observed_text(self) -> str:
        if self.is_share and self.observed is not None:
            return _share(self.observed)
        return _fmt(self.observed)

    @property
    def passed(self) -> bool:
        return self.severity is None


@dataclass
class SuiteResult:
    """The verdict of one suite over one table (or partition)."""

    suite: str
    relation: str
    rows: int
    outcomes: list[RuleOutcome] = field(default_factory=list)
    examples: dict[str, pd.DataFrame] = field(default_factory=dict)
    problem: str | None = None  # a structural failure: missing table or columns
    #: An optional landing table that was never provided: nothing to judge, nothing blocks.
    not_provided: bool = False
    #: file:// URL of this validation's Great Expectations Data Docs page, when published.
    data_docs: str | None = None

    @property
    def severity(self) -> Severity | None:
        """ERROR if anything blocks, WARN if something only warns, None if all passed."""
        if self.problem or any(o.severity == Severity.ERROR for o in self.outcomes):
            return Severity.ERROR
        if any(o.severity == Severity.WARN for o in self.outcomes):
            return Severity.WARN
        return None

    @property
    def passed(self) -> bool:
        return self.severity is None

    @property
    def failures(self) -> list[RuleOutcome]:
        order = {Severity.ERROR: 0, Severity.WARN: 1}
        return sorted((o for o in self.outcomes if not o.passed), key=lambda o: order[o.severity])

    def outcome(self, rule: str) -> RuleOutcome:
        return next(o for o in self.outcomes if o.rule == rule)

    def headline(self, only: Severity | None = None) -> str:
        """One sentence for the UI and logs: what failed, how badly (``only``: rules at that level)."""
        if self.problem:
            return f"{self.relation}: {self.problem}"
        if self.not_provided:
            return (
                f"{self.relation}: source not provided (optional table, absent or header-only; "
                "the features that need it are NULL)"
            )
        if self.passed:
            return (
                f"{self.relation}: all {len(self.outcomes)} expectations met ({self.rows:,} rows)"
            )
        parts = []
        for o in self.failures:
            if only is not None and o.severity != only:
                continue
            count = f", {o.bad_rows:,} rows" if o.bad_rows is not None else ""
            where = f" ({', '.join(o.fields)})" if o.fields else ""
            parts.append(f"{o.rule}{where} [{o.severity}]: observed {o.observed_text}, "
                         f"expected {o.expected}{count}")  # fmt: skip
        return f"{self.relation}: " + "; ".join(parts)

    def outcomes_frame(self) -> pd.DataFrame:
        """Failing rules first: rule, severity, what it checks, observed, expected, bad rows."""
        rows = [
            {
                "status": "FAIL " + str(o.severity).upper() if o.severity else "ok",
                "rule": o.rule,
                "checks": o.description,
                "observed": o.observed_text,
                "expected": o.expected,
                "bad rows": "" if o.bad_rows is None else f"{o.bad_rows:,}",
                "fields": ", ".join(o.fields),
            }
            for o in self.failures + [o for o in self.outcomes if o.passed]
        ]
        return pd.DataFrame(rows)

    def to_markdown(self, max_rules: int = 40) -> str:
        """The report a marketing-ops reader sees in the UI: verdicts, then example rows."""
        if self.problem:
            return f"**{self.relation}**: {self.problem}"
        if self.not_provided:
            return f"**{self.relation}**: {self.headline().split(': ', 1)[1]}"
        parts = [
            f"**{self.relation}**: {self.rows:,} rows checked",
            markdown_table(self.outcomes_frame(), max_rows=max_rules),
        ]
        for rule, frame in self.examples.items():
            parts.append(f"\n**Example rows breaking `{rule}`**\n")
            parts.append(markdown_table(frame))
        return "\n".join(parts)


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _share(value: float) -> str:
    return f"{value:.2%}" if abs(value) >= 1e-4 or not value else f"{value:.4%}"


def _expected(low: float | None, high: float | None, share: bool) -> str:
    def f(v: float) -> str:
        return _share(v) if share else f"{v:g}"

    if low is not None and high is not None:
        return f"= {f(low)}" if low == high else f"between {f(low)} and {f(high)}"
    if low is not None:
        return f">= {f(low)}"
    if high is not None:
        return f"<= {f(high)}"
    return "any"


def _describe(rule: Rule) -> tuple[str, str]:
    """Human text for the warn and error bounds of a rule."""
    share = rule.condition is not None
    return (
        _expected(rule.warn_min, rule.warn_max, share),
        _expected(rule.error_min, rule.error_max, share),
    )


def _table_columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    schema, _, name = relation.rpartition(".")
    rows = con.execute(
        "select column_name from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema or "main", name],
    ).fetchall()
    return [r[0] for r in rows]


def validate(
    con: duckdb.DuckDBPyConnection,
    suite: Suite,
    *,
    thresholds: Thresholds | None = None,
    max_examples: int = 5,
    data_docs_dir: Path | None = None,
    run_name: str | None = None,
) -> SuiteResult:
    """Judge one table against its suite with Great Expectations over the warehouse (and, with
    ``data_docs_dir``, publish GE's Data Docs there, the page filed under ``run_name``). Never raises for bad data: the result says
    what is wrong."""
    th = thresholds or Thresholds()
    columns = _table_columns(con, suite.relation)
    if not columns:
        return SuiteResult(suite.name, suite.relation, 0,
                           problem="the table does not exist (its asset has not been built)")  # fmt: skip

    # Schema: the contract columns must be there before any rule can be evaluated.
    missing = sorted(set(suite.required_columns) - set(columns))
    if missing:
        return SuiteResult(suite.name, suite.relation, 0,
                           problem=f"missing column(s) {', '.join(missing)}; found {', '.join(columns)}")  # fmt: skip

    # A rule about a column the table lacks is not judged (optional columns, small test tables).
    rules = [r for r in suite.rules if set(r.fields) <= set(columns)]
    if suite.previous_rows:
        lo_e, hi_e = th.row_count_error_band
        lo_w, hi_w = th.row_count_warn_band
        # Beside row_count: the table's size is its first health sign, reported before row rules.
        at = next((i + 1 for i, r in enumerate(rules) if r.name == "row_count"), 0)
        rules.insert(at, Rule(
            "row_count_change",
            f"rows now / rows at the previous accepted run ({suite.previous_rows:,})",
            rows_per=repr(float(suite.previous_rows)),
            warn_min=lo_w, warn_max=hi_w, error_min=lo_e, error_max=hi_e,
        ))  # fmt: skip

    # The rows GE judges: one column per rule, evaluated once per row. A landing table's rows
    # (parsed, joined and ranked, costly) are kept whole beside them, so the examples read the
    # same materialised rows.
    source = suite.from_clause(tuple(columns))
    selects, expectations, per = _expectations(con, rules)
    where = f" where {suite.where_sql}" if suite.where_sql else ""
    kept = "t.*, " if suite.materialise else ""
    clash = sorted({r.name for r in rules} & set(columns)) if suite.materialise else []
    if clash:
        raise QualityError(f"{suite.name}: rule names {clash} are also columns of {suite.relation}")
    sql = f"select {kept}{', '.join(selects) or 'true as __row'} from {source}{where}"
    with scratch_table(con, suite.name, sql) as table:
        run = validate_table(con, suite.name, table, expectations, data_docs_dir, run_name)
        if suite.materialise:
            # The scratch rows are already filtered by the suite's where clause.
            suite = dataclasses.replace(suite, where_sql=None)
            source = f"{table} as t"
        return _judge(con, suite, rules, run, per, source, columns, max_examples)


_LEVELS = (Severity.WARN, Severity.ERROR)


def _bounds(rule: Rule, level: Severity) -> tuple[float | None, float | None]:
    if level == Severity.WARN:
        return rule.warn_min, rule.warn_max
    return rule.error_min, rule.error_max


def _expectations(
    con: duckdb.DuckDBPyConnection, rules: list[Rule]
) -> tuple[list[str], list[Expectation], dict[str, float]]:
    """The rule columns of the table GE judges (one per row or column-minimum rule), the
    expectations, and each row-count rule's divisor."""
    columns: list[str] = []
    expectations: list[Expectation] = []
    per: dict[str, float] = {}
    for rule in rules:
        if rule.condition is not None:
            columns.append(f'coalesce({rule.condition}, false) as "{rule.name}"')
        elif rule.column_min is not None:
            columns.append(f'cast({rule.column_min} as double) as "{rule.name}"')
        else:
            per[rule.name] = float(con.execute(f"select {rule.rows_per}").fetchall()[0][0])
        for level in _LEVELS:
            low, high = _bounds(rule, level)
            if low is None and high is None:
                continue
            if rule.condition is not None:
                if low is not None:
                    raise ValueError(f"rule {rule.name}: a row rule bounds its share from above")
                e = Expectation(rule.name, str(level), "share", rule.name, max_share=high)
            elif rule.column_min is not None:
                e = Expectation(rule.name, str(level), "min", rule.name, min_value=low,
                                max_value=high)  # fmt: skip
            else:
                lo, hi = count_bounds(low, high, per[rule.name])
                e = Expectation(rule.name, str(level), "rows", min_value=lo, max_value=hi)
            expectations.append(e)
    return columns, expectations, per


def _judge(
    con: duckdb.DuckDBPyConnection,
    suite: Suite,
    rules: list[Rule],
    run: GxRun,
    per: dict[str, float],
    source: str,
    columns: list[str],
    max_examples: int,
) -> SuiteResult:
    result = SuiteResult(suite.name, suite.relation, run.rows, data_docs=run.page or run.data_docs)
    for rule in rules:
        verdict: Severity | None = None
        observed: float | None = None
        bad: int | None = None
        for level in _LEVELS:
            outcome = run.results.get((rule.name, str(level)))
            if outcome is None:
                continue
            if not outcome.success and (verdict is None or level == Severity.ERROR):
                verdict = level
            if rule.condition is not None:
                bad = outcome.unexpected_count or 0
                observed = bad / outcome.element_count if outcome.element_count else 0.0
            elif rule.column_min is not None:
                observed = rule.empty_value if outcome.observed is None else outcome.observed
            elif outcome.observed is not None:
                observed = outcome.observed / per[rule.name]
        warn_text, error_text = _describe(rule)
        expected = "; ".join(
            t for t in (
                f"warn unless {warn_text}" if warn_text != "any" else "",
                f"block unless {error_text}" if error_text != "any" else "",
            ) if t
        )  # fmt: skip
        result.outcomes.append(RuleOutcome(
            rule=rule.name,
            description=rule.description,
            severity=verdict,
            observed=observed,
            expected=expected,
            bad_rows=bad,
            fields=rule.fields,
            is_share=rule.condition is not None,
        ))  # fmt: skip
        if verdict is not None and rule.condition and max_examples:
            result.examples[rule.name] = _examples(con, suite, rule, source, columns, max_examples)
    log.info("%s", result.headline())
    return result


def _examples(
    con: duckdb.DuckDBPyConnection,
    suite: Suite,
    rule: Rule,
    source: str,
    columns: list[str],
    limit: int,
) -> pd.DataFrame:
    wanted = [c for c in (*suite.example_columns, *rule.fields) if c in columns]
    wanted += [c for c in ("_source_file", "_source_row") if c in columns]
    cols = ", ".join(f"t.{c}" for c in dict.fromkeys(wanted)) or "t.*"
    order = " order by t._source_file, t._source_row" if "_source_row" in columns else ""
    where = f"({rule.condition})" + (f" and {suite.where_sql}" if suite.where_sql else "")
    return con.execute(f"select {cols} from {source} where {where}{order} limit {int(limit)}").df()


# --- row-count history ------------------------------------------------------------------------


def previous_row_count(
    con: duckdb.DuckDBPyConnection, suite_name: str, exclude_run_id: str | None = None
) -> int | None:
    """The row count of the latest accepted run of this suite (other than ``exclude_run_id``)."""
    if not _table_columns(con, ROW_COUNTS_TABLE):
        return None
    row = con.execute(
        f"select row_count from {ROW_COUNTS_TABLE} where suite = ? and run_id <> ? "
        "order by recorded_at desc limit 1",
        [suite_name, exclude_run_id or ""],
    ).fetchall()
    return int(row[0][0]) if row else None


def was_provided_before(
    con: duckdb.DuckDBPyConnection, suite_name: str, exclude_run_id: str | None = None
) -> bool:
    """Whether any accepted run (other than ``exclude_run_id``) saw this table with rows.

    An optional source that was once provided and then disappears (or lands header-only) is a
    broken feed, not a shop without that source: its row-count and freshness rules still apply.
    """
    if not _table_columns(con, ROW_COUNTS_TABLE):
        return False
    row = con.execute(
        f"select coalesce(max(row_count), 0) from {ROW_COUNTS_TABLE} "
        "where suite = ? and run_id <> ?",
        [suite_name, exclude_run_id or ""],
    ).fetchall()
    return bool(row[0][0])


def table_rows(con: duckdb.DuckDBPyConnection, relation: str) -> int | None:
    """Rows of a table, or None when it does not exist."""
    if not _table_columns(con, relation):
        return None
    return int(con.execute(f"select count(*) from {relation}").fetchall()[0][0])


def record_row_count(
    con: duckdb.DuckDBPyConnection,
    suite_name: str,
    rows: int,
    run_id: str,
    as_of: str | None = None,
    recorded_at: dt.datetime | None = None,
) -> None:
    """Remember an accepted run's row count (one row per suite and run; reruns replace it)."""
    con.execute("create schema if not exists quality")
    con.execute(
        f"create table if not exists {ROW_COUNTS_TABLE} (suite varchar, run_id varchar, "
        "as_of_date date, row_count bigint, recorded_at timestamp)"
    )
    when = recorded_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    con.execute("begin transaction")
    try:
        con.execute(f"delete from {ROW_COUNTS_TABLE} where suite = ? and run_id = ?",
                    [suite_name, run_id])  # fmt: skip
        con.execute(f"insert into {ROW_COUNTS_TABLE} values (?, ?, ?, ?, ?)",
                    [suite_name, run_id, as_of, rows, when])  # fmt: skip
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
