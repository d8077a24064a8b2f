"""dbt run inside the step's process: same results as dagster-dbt's subprocess, clear failures."""

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from tessera.orchestration.defs.resources import TesseraDbtCli, build_resources
from tessera.orchestration.defs.sources.assets import raw_tables
from tessera.orchestration.defs.warehouse.assets import daily_feature_models, warehouse_models

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def subset_run(
    small_shop_landing: Path, tmp_path_factory
) -> tuple[Path, dg.ExecuteInProcessResult]:
    """Every history-wide model of the small shop but the training snapshots, on a fresh
    warehouse; returns the data folder and the run."""
    root = tmp_path_factory.mktemp("dbt-in-process")
    shutil.copytree(small_shop_landing, root / "landing")
    result = dg.materialize(
        [raw_tables, warehouse_models],
        # Training snapshots are not an input of the daily features (and the slowest model).
        selection=dg.AssetSelection.all()
        - dg.AssetSelection.assets(["marts", "customer_feature_snapshots"]),
        resources=build_resources(data_dir=root),
        raise_on_error=False,
    )
    return root, result


@pytest.fixture(scope="module")
def built_shop(subset_run) -> Path:
    root, result = subset_run
    assert result.success
    return root


def test_a_subset_on_a_fresh_warehouse_runs_the_tests_of_what_it_builds_only(subset_run) -> None:
    _, result = subset_run
    assert result.success
    tested = {e.asset_key.to_user_string() for e in result.get_asset_check_evaluations()}
    observed = {
        e.asset_key.to_user_string()
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    }
    assert "marts/dim_customers" in tested
    # Their relationship tests to dim_customers would fail: the tables do not exist yet.
    assert not {"marts/customer_feature_snapshots", "marts/customer_features"} & (tested | observed)


def _copy(shop: Path, to: Path) -> Path:
    to.mkdir(parents=True)
    shutil.copy(shop / "warehouse.duckdb", to / "warehouse.duckdb")
    return to


def _features(data_dir: Path, date: str, **dbt_fields) -> dg.ExecuteInProcessResult:
    resources = build_resources(data_dir=data_dir)
    if dbt_fields:
        dbt = resources["dbt"]
        fields = {"project_dir": dbt.project_dir, "profiles_dir": dbt.profiles_dir,
                  "data_dir": dbt.data_dir, "dbt_executable": dbt.dbt_executable}  # fmt: skip
        resources["dbt"] = TesseraDbtCli(**{**fields, **dbt_fields})
    return dg.materialize(
        [daily_feature_models],
        resources=resources,
        partition_key=date,
        raise_on_error=False,
    )


def _reported(result: dg.ExecuteInProcessResult) -> tuple[dict, dict]:
    materialized = {
        m.asset_key.to_user_string(): m.metadata.get("dagster/row_count")
        for m in result.get_asset_materialization_events()
        for m in [m.event_specific_data.materialization]
    }
    checks = {
        (e.asset_key.to_user_string(), e.check_name): (e.passed, e.severity)
        for e in result.get_asset_check_evaluations()
    }
    return materialized, checks


def test_in_process_dbt_reports_the_same_assets_and_checks_as_the_subprocess(
    built_shop: Path, small_shop_end, tmp_path: Path
) -> None:
    date = small_shop_end.isoformat()
    in_process = _features(_copy(built_shop, tmp_path / "a"), date)
    subprocess = _features(_copy(built_shop, tmp_path / "b"), date, in_process=False)

    assert in_process.success and subprocess.success
    assert _reported(in_process) == _reported(subprocess)
    materialized, checks = _reported(in_process)
    assert materialized["marts/customer_features"].value > 1000
    assert (
        "marts/customer_features",
        "no_data_at_or_after_as_of_customer_features__max_source_at",
    ) in {key for key in checks}
    # Artefacts go beside the warehouse they describe, not into the shared project folder.
    assert (tmp_path / "a" / "dbt_target" / "run_results.json").exists()


def test_each_campaign_date_gets_its_own_slice_in_one_process(
    built_shop: Path, small_shop_end, tmp_path: Path
) -> None:
    data = _copy(built_shop, tmp_path / "data")
    dates = ["2026-05-30", "2026-05-31"]
    for date in dates:
        assert _features(data, date).success
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select as_of_date::varchar, max(_max_source_at) from marts.customer_features "
            "group by 1 order by 1"
        ).fetchall()
    assert [r[0] for r in rows] == dates
    for as_of, newest_source in rows:
        assert newest_source is None or str(newest_source) < as_of


def test_failing_dbt_test_fails_the_step_names_the_test_and_frees_the_warehouse(
    built_shop: Path, small_shop_end, tmp_path: Path
) -> None:
    data = _copy(built_shop, tmp_path / "data")
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        # A customer version twice in dim_customers_history (what features join as of D) gives
        # two feature rows: the key test fails.
        con.execute(
            "insert into marts.dim_customers_history "
            "select * from marts.dim_customers_history limit 1"
        )

    result = _features(data, small_shop_end.isoformat())

    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.cause.message
    assert "unique_combination_of_columns_customer_features_as_of_date__customer_id" in message
    assert ": fail:" in message and "\x1b" not in message
    # The model built before its test failed: the run records both, the check as failed.
    materialized, checks = _reported(result)
    assert "marts/customer_features" in materialized
    failed = [name for (_, name), (passed, _) in checks.items() if not passed]
    assert failed == ["unique_combination_of_columns_customer_features_as_of_date__customer_id"]
    # dbt's in-process connection is closed: the file takes a new writer at once.
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        assert con.execute("select count(*) from marts.customer_features").fetchall()[0][0] > 0


def test_a_subset_still_tests_its_models_against_tables_built_earlier(
    built_shop: Path, tmp_path: Path
) -> None:
    data = _copy(built_shop, tmp_path / "data")
    result = dg.materialize(
        [warehouse_models],
        selection=dg.AssetSelection.assets(["marts", "fct_campaign_responses"]),
        resources=build_resources(data_dir=data),
    )
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    # dim_customers is not in the subset, but it exists: the relationship test runs.
    name = "relationships_fct_campaign_responses_customer_id__customer_id__ref_dim_customers_"
    assert checks.get(name) is True
