"""Optional landing tables: absent or header-only passes as "source not provided" until once seen."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from tessera.orchestration.defs.quality.checks import raw_contract_checks
from tessera.orchestration.defs.resources import build_resources
from tessera.orchestration.defs.sources.assets import raw_tables
from tessera.orchestration.run_cli import failure_reason, not_run_steps

D = "2025-06-01"
CUSTOMERS = (
    "customer_id,email,phone,created_at,country,email_opt_in,sms_opt_in\n"
    "C1,a@example.com,+4915100000001,2025-01-01T09:00:00+00:00,DE,true,false\n"
    "C2,b@example.com,,2025-01-02T10:00:00+00:00,FR,false,false\n"
)
ORDERS = (
    "order_id,customer_id,ordered_at,amount,currency,status\n"
    "O1,C1,2025-05-31T10:00:00+00:00,10.50,EUR,completed\n"
    "O2,C2,2025-05-30T10:00:00+00:00,20.00,EUR,completed\n"
)
EVENTS_HEADER = "customer_id,occurred_at,event_type,category\n"
EVENTS = EVENTS_HEADER + "C1,2025-05-31 10:00:00,page_view,\nC2,2025-05-31 11:00:00,app_open,\n"


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A data folder whose landing has only customers and orders."""
    for table, text in {"customers": CUSTOMERS, "orders": ORDERS}.items():
        (tmp_path / "landing" / table).mkdir(parents=True)
        (tmp_path / "landing" / table / "part-0.csv").write_text(text)
    return tmp_path


@dg.asset(deps=[["raw", t] for t in ("customers", "orders", "order_items", "events")])
def downstream() -> None:
    """Stands for the warehouse build and everything after it."""


def _land(shop: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_tables, raw_contract_checks, downstream],
        resources=build_resources(data_dir=shop),
        tags={"dagster/partition": D},  # the clock of the checks: freshness is judged for D
        raise_on_error=False,
        instance=dg.DagsterInstance.ephemeral(),
    )


def _check(result: dg.ExecuteInProcessResult, table: str) -> dg.AssetCheckEvaluation:
    return next(
        e for e in result.get_asset_check_evaluations() if e.asset_key.path == ["raw", table]
    )


def _set_events(shop: Path, text: str) -> None:
    (shop / "landing" / "events").mkdir(exist_ok=True)
    (shop / "landing" / "events" / "part-0.csv").write_text(text)


def test_absent_optional_tables_pass_as_source_not_provided(shop: Path) -> None:
    result = _land(shop)
    assert result.success
    for table in ("order_items", "events", "campaign_responses"):
        evaluation = _check(result, table)
        assert evaluation.passed, evaluation.description
        assert "source not provided" in evaluation.description
        assert evaluation.metadata["source"].value == "source not provided"
    assert _check(result, "orders").metadata["source"].value == "provided"
    landed = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[0] == "raw"
    }
    assert landed["raw/events"]["source"].value == "source not provided"
    assert landed["raw/events"]["dagster/row_count"].value == 0
    assert "downstream" in {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}


def test_a_header_only_optional_table_is_not_provided_either(shop: Path) -> None:
    _set_events(shop, EVENTS_HEADER)
    result = _land(shop)
    assert result.success
    assert "source not provided" in _check(result, "events").description


def test_an_optional_table_seen_once_and_then_empty_blocks(shop: Path) -> None:
    _set_events(shop, EVENTS)
    first = _land(shop)
    assert first.success
    assert _check(first, "events").passed
    _set_events(shop, EVENTS_HEADER)
    second = _land(shop)
    evaluation = _check(second, "events")
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert "row_count" in evaluation.description
    assert "downstream" not in {
        e.asset_key.path[-1] for e in second.get_asset_materialization_events()
    }


def test_a_missing_required_table_names_it(shop: Path) -> None:
    (shop / "landing" / "orders" / "part-0.csv").unlink()
    result = _land(shop)
    step, reason = failure_reason(result)
    assert step == "raw_tables"
    assert "no landing files for table 'orders'" in reason
    assert "customers and orders are required" in reason


# --- what `tessera run` prints for a failed date -------------------------------------------


def test_the_failure_reason_of_a_landing_error_names_file_and_column(shop: Path) -> None:
    (shop / "landing" / "orders" / "part-1.csv").write_text(ORDERS.replace("amount", "amt", 1))
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [raw_tables, raw_contract_checks, downstream],
        resources=build_resources(data_dir=shop),
        raise_on_error=False,
        instance=instance,
    )
    step, reason = failure_reason(result)
    assert step == "raw_tables"
    assert "orders/part-1.csv: missing column(s) amount" in reason
    assert "\n" not in reason
    assert "Error" not in reason.split(":")[0]  # no exception class name in front
    assert "downstream" in not_run_steps(result, instance)


def test_the_failure_reason_of_a_blocking_check_lists_its_failing_rules_only(shop: Path) -> None:
    (shop / "landing" / "orders" / "part-0.csv").write_text(
        ORDERS.replace("10.50", "abc").replace("20.00", "xyz")
    )
    result = _land(shop)
    step, reason = failure_reason(result)
    assert step == "raw_contract_checks"
    assert reason.startswith("blocking check raw/orders contract: raw.orders: unparseable_number")
    assert "[warn]" not in reason
