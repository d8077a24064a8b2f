"""Bad input end to end through Dagster: each gives a clear stop or a quarantine, never a partial warehouse.

Every case dirties the landing copy of one shared, cleanly built shop, runs the gated subgraph for
campaign date D, asserts the message and the state of the warehouse, then fixes the data and
reruns: the result must equal the clean build.
"""

from __future__ import annotations

import pytest
from gate_harness import (
    BUILT_TABLES,
    RAW,
    RAW_TABLES,
    Shop,
    accounting_is_balanced,
    check,
    fingerprints,
    materialized,
    run_gated,
    step_error,
)

pytestmark = pytest.mark.e2e


def _assert_fixed_rerun_matches_clean(shop: Shop, table: str) -> None:
    """Fix the landing table and reload: raw equals the clean build, the gates pass again."""
    shop.restore(table)
    result = run_gated(shop, selection=RAW, partition_key=None)
    assert result.success
    assert all(e.passed or e.severity.value == "WARN" for e in result.get_asset_check_evaluations())
    assert fingerprints(shop, RAW_TABLES) == {t: shop.baseline[t] for t in RAW_TABLES}
    accounting_is_balanced(shop)


def _assert_built_layers_unchanged(shop: Shop) -> None:
    assert fingerprints(shop, BUILT_TABLES) == {t: shop.baseline[t] for t in BUILT_TABLES}


# --- files that cannot be landed: the load step stops, naming file and field ----------------


def _missing_folder(shop: Shop) -> tuple[str, tuple[str, ...]]:
    import shutil

    shutil.rmtree(shop.landing / "orders")
    return "orders", ("orders", "no landing files for table 'orders'")


def _empty_file(shop: Shop) -> tuple[str, tuple[str, ...]]:
    (shop.landing / "orders" / "part-extra.csv").write_bytes(b"")
    return "orders", ("part-extra.csv", "the file is empty", "amount")


def _wrong_header(shop: Shop) -> tuple[str, tuple[str, ...]]:
    (shop.landing / "orders" / "part-extra.csv").write_text(
        "order_id,customer_id,ordered_at,amt,currency,status\nx1,c1,2026-05-01,3.5,EUR,completed\n"
    )
    return "orders", ("part-extra.csv", "missing column(s) amount", "amt")


def _truncated_parquet(shop: Shop) -> tuple[str, tuple[str, ...]]:
    part = sorted((shop.landing / "events").glob("*.parquet"))[0]
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2])
    return "events", (part.name, "cannot be read as parquet", "events")


def _non_utf8(shop: Shop) -> tuple[str, tuple[str, ...]]:
    (shop.landing / "customers" / "part-extra.csv").write_bytes(
        b"customer_id,email,phone,created_at,country,email_opt_in,sms_opt_in,first_name\n"
        b"cx1,m@example.de,+49 170 1,2026-01-01,DE,true,false,M\xfcller\n"
    )
    return "customers", ("part-extra.csv", "customers")


@pytest.mark.parametrize(
    "dirty",
    [_missing_folder, _empty_file, _wrong_header, _truncated_parquet, _non_utf8],
    ids=["missing-file", "empty-file", "wrong-header", "truncated-parquet", "non-utf8"],
)
def test_unreadable_landing_stops_the_load_with_the_file_and_leaves_the_warehouse_as_it_was(
    shop: Shop, dirty
) -> None:
    table, expected = dirty(shop)
    result = run_gated(shop)

    assert not result.success
    message = step_error(result, "raw_tables")
    for text in expected:
        assert text in message, message
    assert materialized(result) == set(), "nothing may be materialized after a failed load"
    assert fingerprints(shop) == shop.baseline  # raw included: the load is one transaction
    _assert_fixed_rerun_matches_clean(shop, table)


# --- data that loads but breaks the contract wholesale: a blocking check stops the run -------


def _amount_column_of_text(shop: Shop) -> str:
    import duckdb

    folder = shop.landing / "orders"
    parts = sorted(folder.glob("*.parquet"))
    with duckdb.connect() as con:
        frame = con.execute(
            f"select * replace ('abc' as amount) from read_parquet({[str(p) for p in parts]})"
        ).df()
    for p in parts:
        p.unlink()
    frame.to_parquet(folder / "part-00000.parquet", index=False)
    return "orders"


def _ten_fold_spike(shop: Shop) -> str:
    import shutil

    folder = shop.landing / "events"
    for part in sorted(folder.glob("*.parquet")):
        for k in range(9):
            shutil.copy(part, folder / f"{part.stem}-copy{k}.parquet")
    return "events"


@pytest.mark.parametrize(
    ("dirty", "asset", "rule", "field"),
    [
        (_amount_column_of_text, "raw/orders", "unparseable_number", "amount"),
        (_ten_fold_spike, "raw/events", "row_count_change", None),
    ],
    ids=["wrong-type-column", "ten-fold-row-count"],
)
def test_contract_breach_blocks_every_downstream_asset_of_the_partition(
    shop: Shop, dirty, asset, rule, field
) -> None:
    table = dirty(shop)
    result = run_gated(shop)

    evaluation = check(result, asset)
    assert not evaluation.passed and evaluation.severity.value == "ERROR"
    assert evaluation.description.startswith(f"raw.{table}: {rule}")
    if field:
        assert f"({field}) [error]" in evaluation.description
    report = evaluation.metadata["report"].value
    assert rule in report and "FAIL ERROR" in report
    built = materialized(result)
    assert {
        "marts/customer_features",
        "marts/dim_customers",
        "marts/fct_orders",
        "reports/quarantine_summary",
    }.isdisjoint(built), built
    _assert_built_layers_unchanged(shop)
    _assert_fixed_rerun_matches_clean(shop, table)


# --- stray bad rows: quarantined with reasons, the rest of the warehouse complete ------------


def test_stray_bad_rows_are_quarantined_with_reasons_and_the_warehouse_is_complete(
    shop: Shop,
) -> None:
    order_id, customer_id, ordered_at, amount = shop.query(
        "select order_id, customer_id, ordered_at, amount from staging.stg_shop__orders "
        "order by order_id limit 1"
    )[0]
    (shop.landing / "orders" / "part-extra.csv").write_text(
        "order_id,customer_id,ordered_at,amount,currency,status\n"
        f"{order_id},{customer_id},{ordered_at},{amount},EUR,completed\n"  # duplicated order
        "zz-ghost-1,no-such-customer,2026-05-01T10:00:00,20,EUR,completed\n"  # unknown customer
        f"zz-future-1,{customer_id},2099-01-01T00:00:00,20,EUR,completed\n"  # in the future
        f"zz-text-1,{customer_id},2026-05-01T10:00:00,abc,EUR,completed\n"  # wrong type
    )
    (shop.landing / "events" / "part-extra.csv").write_text(
        "customer_id,occurred_at,event_type,category\n"
        f"{customer_id},2099-01-01T00:00:00,page_view,shoes\n"
    )
    result = run_gated(shop)

    assert result.success
    raw_orders = check(result, "raw/orders")
    assert raw_orders.severity.value == "WARN" and not raw_orders.passed
    for rule in (
        "duplicate_key",
        "unknown_customer",
        "future_timestamp",
        "unparseable_number",
    ):
        assert rule in raw_orders.description
    assert "part-extra.csv" in raw_orders.metadata["report"].value
    reasons = dict(shop.query(
        "select _source_row, reason from quarantine.quarantine_orders "
        "where _source_file like '%part-extra.csv'"
    ))  # fmt: skip
    assert reasons == {1: "duplicate_key", 2: "unknown_customer", 3: "future_timestamp",
                       4: "unparseable_number"}  # fmt: skip
    assert shop.query(
        "select reason from quarantine.quarantine_events where _source_file like '%part-extra.csv'"
    ) == [("future_timestamp",)]
    summary = next(
        e for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "reports/quarantine_summary"
    ).materialization.metadata  # fmt: skip
    baseline_quarantined = shop.baseline["quarantine.quarantine_orders"][0]
    assert summary["quarantined_orders"].value == baseline_quarantined + 4
    assert "duplicate_key" in summary["by_table_and_reason"].value
    assert check(result, "reports/quarantine_summary", "row_accounting").passed
    accounting_is_balanced(shop)
    # Complete: every clean row made it, and nothing else did.
    for table in ("marts.fct_orders", "marts.dim_customers", "marts.customer_features"):
        assert fingerprints(shop, (table,))[table] == shop.baseline[table], table
    assert all(
        check(result, f"marts/{a}").passed
        for a in ("fct_orders", "dim_customers", "customer_features")
    )

    shop.restore("orders")
    shop.restore("events")
    assert run_gated(shop).success
    assert fingerprints(shop) == shop.baseline
