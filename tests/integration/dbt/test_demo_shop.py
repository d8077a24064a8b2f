"""dbt build on the synthetic demo shop (dirty rows included): the whole project passes."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from dbt_harness import Warehouse, failures

from tessera.warehouse.landing import load_landing

pytestmark = pytest.mark.integration

TABLES = ("customers", "orders", "order_items", "events", "campaign_responses")


@pytest.fixture(scope="session")
def demo_warehouse(small_shop_landing: Path, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """The shared small demo shop, landed and built once (read it, do not change it)."""
    root = tmp_path_factory.mktemp("dbt-demo")
    warehouse = Warehouse(data_dir=root / "data", target_dir=root / "target")
    warehouse.data_dir.mkdir()
    with duckdb.connect(str(warehouse.path)) as con:
        load_landing(con, small_shop_landing)
        # A campaign date a month before the shop's last order: later data exists and must not leak.
        (as_of,) = con.execute(
            "select cast(max(cast(try_cast(ordered_at as timestamptz) as date)) - 30 as varchar)"
            " from raw.orders"
        ).fetchall()[0]
    result = warehouse.dbt("build", vars={"as_of": as_of, "snapshot_count": 4})
    warehouse.build_result = result  # type: ignore[attr-defined]
    warehouse.as_of = as_of  # type: ignore[attr-defined]
    return warehouse


def test_build_passes_on_the_demo_shop(demo_warehouse: Warehouse) -> None:
    assert failures(demo_warehouse.build_result) == []  # type: ignore[attr-defined]


def test_demo_rows_are_all_accounted_for(demo_warehouse: Warehouse) -> None:
    blocked_total = 0
    for table in TABLES:
        counts = demo_warehouse.query(
            f"""
            select
                (select count(*) from raw.{table}) as raw_rows,
                (select count(*) from staging.stg_shop__{table}) as staged,
                (select count(*) from quarantine.quarantine_{table} where is_blocking) as blocked
            """
        ).iloc[0]
        assert counts.raw_rows == counts.staged + counts.blocked, table
        blocked_total += int(counts.blocked)
    # The generator writes a few dirty rows (duplicates, bad values): some must be held back.
    assert blocked_total > 0


def test_every_customer_registered_before_as_of_has_features(demo_warehouse: Warehouse) -> None:
    as_of = demo_warehouse.as_of  # type: ignore[attr-defined]
    counts = demo_warehouse.query(
        """
        select
            (select count(*) from marts.dim_customers where created_at < cast(? as timestamp)) as expected,
            (select count(*) from marts.customer_features where as_of_date = cast(? as date)) as got,
            (select count(*) from marts.customer_features where orders_total > 0) as buyers
        """,
        [as_of, as_of],
    ).iloc[0]
    assert counts.got == counts.expected > 0
    assert 0 < counts.buyers < counts.got


def test_training_snapshots_keep_a_fixed_customer_sample_above_the_row_cap(
    demo_warehouse: Warehouse, tmp_path: Path
) -> None:
    warehouse = demo_warehouse.copy_to(tmp_path / "data")
    as_of = demo_warehouse.as_of  # type: ignore[attr-defined]
    customers = int(warehouse.query("select count(*) n from marts.dim_customers").n[0])
    # 4 snapshots of every customer would be 4 x customers rows; cap them at a quarter of that.
    cap = customers
    result = warehouse.dbt(
        "build", "--select", "int_feature_snapshot_customers", "customer_feature_snapshots",
        vars={"as_of": as_of, "snapshot_count": 4, "snapshot_max_rows": cap},
    )  # fmt: skip
    assert failures(result) == []

    sampled = warehouse.query("select count(*) n from intermediate.int_feature_snapshot_customers")
    assert 0.15 * customers < sampled.n[0] < 0.35 * customers
    outside = warehouse.query(
        """
        select count(*) n from marts.customer_feature_snapshots s
        left join intermediate.int_feature_snapshot_customers c using (customer_id)
        where c.customer_id is null
        """
    )
    assert outside.n[0] == 0
    rows = int(warehouse.query("select count(*) n from marts.customer_feature_snapshots").n[0])
    # A hash sample: near the cap, not exactly at it (customers joining later have fewer rows).
    assert 0.5 * cap < rows < 1.2 * cap
    # A sampled customer's rows equal those of the full build: sampling drops rows only.
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        con.execute(f"attach '{demo_warehouse.path}' as full_build (read_only)")
        compared, differing = con.execute(
            """
            select count(*),
                   count(*) filter (where s.revenue_total <> f.revenue_total
                       or s.events_30d <> f.events_30d or s.orders_365d <> f.orders_365d
                       or s.messages_received_90d <> f.messages_received_90d)
            from marts.customer_feature_snapshots s
            join full_build.marts.customer_feature_snapshots f using (as_of_date, customer_id)
            """
        ).fetchall()[0]
    assert compared == rows and differing == 0
