"""Great Expectations suites as asset checks: ERROR blocks everything downstream, WARN only shows.

Every check is declared blocking; a failure with WARN severity does not block (Dagster blocks on
ERROR only), so one check per asset carries both levels and the UI shows the worst one.
Great Expectations is imported lazily by the runner, inside the check bodies.
"""

import dataclasses
import datetime as dt
import warnings

import dagster as dg
from dagster_duckdb import DuckDBResource

from tessera.orchestration.defs.partitions import WAREHOUSE_POOL, daily_partitions
from tessera.orchestration.defs.sources.assets import RAW_ASSET_KEYS
from tessera.orchestration.defs.warehouse.assets import model_key
from tessera.quality.gx_sql import data_docs_dir
from tessera.quality.runner import (
    SuiteResult,
    previous_row_count,
    record_row_count,
    table_rows,
    validate,
    was_provided_before,
)
from tessera.quality.suites import Clock, Severity, Thresholds, mart_suite, raw_suite
from tessera.warehouse.landing import OPTIONAL_TABLES

RAW_TABLES = ("customers", "orders", "order_items", "events", "campaign_responses")
MARTS = ("dim_customers", "fct_orders", "fct_order_items")
CHECK_NAME = "contract"


class QualityConfig(dg.Config):
    """Thresholds of the quality gates (change them in the Launchpad for one run)."""

    max_bad_share: float = 0.05
    max_orphan_share: float = 0.10
    row_count_min_ratio: float = 0.5
    row_count_max_ratio: float = 3.0
    freshness_hours: float = 48.0
    max_examples: int = 5

    def thresholds(self) -> Thresholds:
        return Thresholds(
            max_bad_share=self.max_bad_share,
            max_orphan_share=self.max_orphan_share,
            row_count_error_band=(self.row_count_min_ratio, self.row_count_max_ratio),
            freshness_hours=self.freshness_hours,
        )


def _clock(context: dg.AssetCheckExecutionContext) -> Clock:
    """Now, and the campaign date of the run when it has one (unpartitioned checks in a daily run)."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    if context.has_partition_key:
        return Clock(now=now, as_of=context.partition_key)
    return Clock(now=now, as_of=context.run.tags.get("dagster/partition"))


def check_result(result: SuiteResult, check_key: dg.AssetCheckKey) -> dg.AssetCheckResult:
    """A suite's verdict as the check result marketing ops read in the UI."""
    failures = result.failures
    # The Great Expectations Data Docs page of this validation (when the warehouse is a file).
    docs = {"data_docs": dg.MetadataValue.url(result.data_docs)} if result.data_docs else {}
    return dg.AssetCheckResult(
        asset_key=check_key.asset_key,
        check_name=check_key.name,
        passed=result.passed,
        severity=(
            dg.AssetCheckSeverity.WARN
            if result.severity == Severity.WARN
            else dg.AssetCheckSeverity.ERROR
        ),
        description=result.headline()[:1000],
        metadata={
            "source": "source not provided" if result.not_provided else "provided",
            "summary": dg.MetadataValue.text(result.headline()),
            # What blocks, without the warnings: `tessera run` prints it for a failed date.
            "blocking_summary": dg.MetadataValue.text(
                result.headline(only=Severity.ERROR) if result.severity == Severity.ERROR else ""
            ),
            "report": dg.MetadataValue.md(result.to_markdown()),
            "rows_checked": result.rows,
            "blocking_failures": sum(f.severity == Severity.ERROR for f in failures)
            + (1 if result.problem else 0),
            "warnings": sum(f.severity == Severity.WARN for f in failures),
            "failed_expectations": dg.MetadataValue.json(
                [
                    {
                        "rule": f.rule,
                        "severity": str(f.severity),
                        "observed": f.observed,
                        "expected": f.expected,
                        "bad_rows": f.bad_rows,
                        "fields": list(f.fields),
                    }
                    for f in failures
                ]
            ),  # fmt: skip
            **docs,
        },
    )


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            CHECK_NAME,
            asset=RAW_ASSET_KEYS[table],
            blocking=True,
            description=f"Great Expectations contract of landing table `{table}`: columns, keys, "
            "parseable values, allowed sets, referential integrity, no future timestamps, "
            "freshness and row-count change. ERROR blocks the warehouse build; WARN rows are "
            "quarantined by staging.",
        )
        for table in RAW_TABLES
    ],
    can_subset=True,
    pool=WAREHOUSE_POOL,
    name="raw_contract_checks",
)
def raw_contract_checks(
    context: dg.AssetCheckExecutionContext, config: QualityConfig, warehouse: DuckDBResource
):
    """Validate each selected landing table; remember its row count when it is accepted.

    An optional table that is empty and was never provided with rows passes as "source not
    provided"; once it has been provided, its row-count and freshness rules apply again.
    """
    clock = _clock(context)
    thresholds = config.thresholds()
    run_id = context.run.run_id
    docs = data_docs_dir(warehouse.database)
    with warehouse.get_connection() as con:
        for key in sorted(context.selected_asset_check_keys, key=lambda k: k.asset_key.path):
            table = key.asset_key.path[-1]
            suite = raw_suite(table, clock, thresholds)
            if (
                table in OPTIONAL_TABLES
                and table_rows(con, suite.relation) == 0
                and not was_provided_before(con, suite.name, exclude_run_id=run_id)
            ):
                result = SuiteResult(suite.name, suite.relation, 0, not_provided=True)
            else:
                previous = previous_row_count(con, suite.name, exclude_run_id=run_id)
                suite = dataclasses.replace(suite, previous_rows=previous)
                result = validate(
                    con, suite, thresholds=thresholds, max_examples=config.max_examples,
                    data_docs_dir=docs, run_name=run_id,
                )  # fmt: skip
            if result.severity != Severity.ERROR:
                record_row_count(con, suite.name, result.rows, run_id, clock.as_of)
            context.log.info(result.headline())
            yield check_result(result, key)


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            CHECK_NAME,
            asset=model_key(table),
            blocking=True,
            description=f"Great Expectations invariants of mart `{table}`: unique keys, no nulls "
            "in keys, value ranges and references. ERROR blocks the daily features and "
            "everything after them.",
        )
        for table in MARTS
    ],
    can_subset=True,
    pool=WAREHOUSE_POOL,
    name="mart_contract_checks",
)
def mart_contract_checks(
    context: dg.AssetCheckExecutionContext, config: QualityConfig, warehouse: DuckDBResource
):
    """Validate each selected history-wide mart."""
    clock = _clock(context)
    thresholds = config.thresholds()
    docs = data_docs_dir(warehouse.database)
    with warehouse.get_connection() as con:
        for key in sorted(context.selected_asset_check_keys, key=lambda k: k.asset_key.path):
            suite = mart_suite(key.asset_key.path[-1], clock, thresholds)
            result = validate(con, suite, thresholds=thresholds, max_examples=config.max_examples,
                              data_docs_dir=docs, run_name=context.run.run_id)  # fmt: skip
            context.log.info(result.headline())
            yield check_result(result, key)


# Partitioned asset checks are a preview feature in Dagster 1.13; the check is judged per
# partition on purpose (a bad day must block only that day), so the warning is noise here.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")


@dg.asset_check(
    asset=model_key("customer_features"),
    name=CHECK_NAME,
    blocking=True,
    partitions_def=daily_partitions,
    pool=WAREHOUSE_POOL,
    description="Great Expectations invariants of the features of campaign date D: one row per "
    "customer created before D, no negative counts or ages (which would mean data at or after D "
    "leaked in), shares in [0, 1]. ERROR blocks scoring, segments and sends for D.",
)
def customer_features_contract(
    context: dg.AssetCheckExecutionContext, config: QualityConfig, warehouse: DuckDBResource
) -> dg.AssetCheckResult:
    """Validate the partition of campaign date D."""
    clock = _clock(context)
    thresholds = config.thresholds()
    with warehouse.get_connection() as con:
        columns = tuple(
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'marts' and table_name = 'customer_features'"
            ).fetchall()
        )
        suite = mart_suite("customer_features", clock, thresholds, columns=columns)
        result = validate(con, suite, thresholds=thresholds, max_examples=config.max_examples,
                          data_docs_dir=data_docs_dir(warehouse.database),
                          run_name=context.run.run_id)  # fmt: skip
    context.log.info(result.headline())
    return check_result(result, dg.AssetCheckKey(model_key("customer_features"), CHECK_NAME))
