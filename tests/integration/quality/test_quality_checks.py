"""The quality checks in Dagster: partitioned blocking, WARN that lets data flow, and lazy GE import."""

import subprocess
import sys
import urllib.parse
from pathlib import Path

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from tessera.orchestration.defs.partitions import daily_partitions
from tessera.orchestration.defs.quality.checks import (
    customer_features_contract,
    mart_contract_checks,
    raw_contract_checks,
)

ROOT = Path(__file__).resolve().parents[3]
D = "2025-06-01"

#: (days_since_last_order of c2, share_shoes of c1) written into the fake features for D.
CLEAN = (30, 0.5)
LEAKY = (-2, 0.5)


def _pipeline(values: tuple[int, float]):
    """A fake customer_features partition and a downstream asset, around the real check."""

    @dg.asset(key=["marts", "customer_features"], partitions_def=daily_partitions)
    def customer_features(context: dg.AssetExecutionContext, warehouse: DuckDBResource) -> None:
        days, share = values
        as_of = context.partition_key
        with warehouse.get_connection() as con:
            con.execute("create schema if not exists marts")
            con.execute(
                "create or replace table marts.dim_customers as select * from (values "
                "('c1', timestamp '2025-01-01'), ('c2', timestamp '2025-05-01')) "
                "v(customer_id, created_at)"
            )
            con.execute(
                "create or replace table marts.customer_features as select * from (values "
                f"(date '{as_of}', 'c1', 151, 3, {share}), "
                f"(date '{as_of}', 'c2', 31, {days}, 1.0)) "
                "v(as_of_date, customer_id, tenure_days, days_since_last_order, share_shoes)"
            )

    @dg.asset(deps=[customer_features], partitions_def=daily_partitions)
    def customer_scores() -> None:
        """Stands for everything downstream (scores, segments, sends)."""

    return [customer_features, customer_scores, customer_features_contract]


def _run(tmp_path: Path, values: tuple[int, float]) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        _pipeline(values),
        partition_key=D,
        resources={"warehouse": DuckDBResource(database=str(tmp_path / "w.duckdb"))},
        raise_on_error=False,
    )


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_failing_partition_check_blocks_downstream_of_that_partition(tmp_path: Path) -> None:
    result = _run(tmp_path, LEAKY)
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert "negative_days_since_last_order (days_since_last_order) [error]" in (
        evaluation.description
    )
    assert "c2" in evaluation.metadata["report"].value  # the example row
    assert _materialized(result) == {"marts/customer_features"}
    assert evaluation.partition == D  # judged per partition


def test_passing_partition_check_lets_downstream_run(tmp_path: Path) -> None:
    result = _run(tmp_path, CLEAN)
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed, evaluation.description
    assert _materialized(result) == {"marts/customer_features", "customer_scores"}


def test_each_check_links_its_great_expectations_data_docs_page(tmp_path: Path) -> None:
    (evaluation,) = _run(tmp_path, LEAKY).get_asset_check_evaluations()
    link = evaluation.metadata["data_docs"]
    assert isinstance(link, dg.UrlMetadataValue) and link.url.startswith("file://")
    page = Path(urllib.parse.unquote(urllib.parse.urlparse(link.url).path))
    docs = tmp_path / "quality" / "data_docs"
    assert page.suffix == ".html" and page.is_file() and docs in page.parents
    html = page.read_text(encoding="utf-8")
    assert "customer_features" in html  # the check's suite
    assert "negative_days_since_last_order" in html  # the failing expectation's column
    assert (docs / "index.html").is_file()


def test_every_quality_check_is_blocking_so_errors_stop_downstream() -> None:
    specs = [
        *raw_contract_checks.check_specs,
        *mart_contract_checks.check_specs,
        *customer_features_contract.check_specs,
    ]
    assert len(specs) == 9
    assert all(spec.blocking for spec in specs)


@pytest.mark.timeout(300)
def test_loading_the_definitions_does_not_import_great_expectations() -> None:
    code = (
        "import sys; from tessera.orchestration.definitions import defs; defs(); "
        "assert 'great_expectations' not in sys.modules, 'GE imported at load time'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
