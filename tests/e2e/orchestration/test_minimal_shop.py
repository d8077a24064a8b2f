"""`tessera run --days 3` on a shop of only customers and orders: segments, matrix and sends happen."""

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.e2e

DATES = 3
END = dt.date(2026, 6, 1)
OPTIONAL = ("order_items", "events", "campaign_responses")


@pytest.fixture(scope="module")
def minimal_run(tmp_path_factory: pytest.TempPathFactory):
    """A 300-customer demo shop with every optional table removed, run for three dates."""
    from tessera.demo.generator import generate_shop

    data = tmp_path_factory.mktemp("minimal-shop")
    generate_shop(
        data / "landing", customers=300, seed=11, start=END - dt.timedelta(days=400), end=END
    )
    for table in OPTIONAL:
        shutil.rmtree(data / "landing" / table)
    mp = pytest.MonkeyPatch()
    mp.setenv("TESSERA_DATA_DIR", str(data))
    mp.setenv("DAGSTER_HOME", str(data / "dagster_home"))
    from tessera.orchestration.run_cli import run

    try:
        code = run(days=DATES, end=END, full_each_day=False)
        yield data, code
    finally:
        mp.undo()


def _rows(data: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_shop_of_customers_and_orders_runs_three_dates(minimal_run) -> None:
    _, code = minimal_run
    assert code == 0


@pytest.mark.parametrize(
    "table",
    [
        "marts.customer_features",
        "ml.customer_scores",
        "segments.segment_membership",
        "campaigns.campaign_matrix",
        "activations.outbound_messages",
    ],
)
def test_every_date_has_features_scores_segments_matrix_and_messages(minimal_run, table) -> None:
    data, _ = minimal_run
    assert _rows(data, f"select count(distinct as_of_date) from {table}") == [(DATES,)]


def test_sends_reach_the_local_sink(minimal_run) -> None:
    data, _ = minimal_run
    ((sent,),) = _rows(data, "select count(*) from activations.deliveries where status = 'sent'")
    assert sent > 0


def test_everyone_is_segmented(minimal_run) -> None:
    data, _ = minimal_run
    got = _rows(
        data,
        "select f.as_of_date, count(*), count(m.micro_segment_id) from marts.customer_features f "
        "left join segments.segment_membership m using (as_of_date, customer_id) group by 1",
    )
    assert all(features == segmented > 0 for _, features, segmented in got)


def test_features_of_missing_sources_are_null_not_zero(minimal_run) -> None:
    data, _ = minimal_run
    ((rows, events, items, shares, orders),) = _rows(
        data,
        f"select count(*), count(events_30d), count(items_ski), count(share_ski), "
        f"count(orders_total) from marts.customer_features where as_of_date = '{END}'",
    )
    assert rows > 0
    assert (events, items, shares) == (0, 0, 0)
    assert orders == rows


def test_item_counts_are_unknown_without_order_lines(minimal_run) -> None:
    data, _ = minimal_run
    ((orders, counted),) = _rows(data, "select count(*), count(item_count) from marts.fct_orders")
    assert orders > 0 and counted == 0


def test_responses_from_the_first_sends_count_from_the_next_date_on(minimal_run) -> None:
    """campaign_responses arrives with Tessera's own sends: NULL before, counted after."""
    data, _ = minimal_run
    got = dict(
        _rows(
            data,
            "select as_of_date, count(opens_90d) from marts.customer_features group by 1",
        )
    )
    first = END - dt.timedelta(days=DATES - 1)
    assert got[first] == 0
    assert got[END] > 0


def test_the_catalog_parts_that_need_missing_sources_are_named(minimal_run) -> None:
    import dagster as dg

    data, _ = minimal_run
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(data / "dagster_home"))
        instance = dg.DagsterInstance.get()
        event = instance.get_latest_materialization_event(
            dg.AssetKey(["segments", "segment_membership"])
        )
    parts = event.asset_materialization.metadata["unavailable_catalog_parts"].value
    assert parts["sources_not_provided"] == ["order_items", "events"]
    assert {"activity", "affinity"} <= set(parts["dimensions"])
    assert {"cart_abandoners", "ski_churners"} <= set(parts["target_groups"])
    assert "gold_tier" not in parts["target_groups"]


def test_a_broken_landing_file_prints_one_summary_without_a_stack_trace(
    minimal_run, capfd, caplog
) -> None:
    data, _ = minimal_run
    bad = data / "landing" / "orders" / "part-extra.csv"
    bad.write_text(
        "order_id,customer_id,ordered_at,amt,currency,status\nx1,c1,2026-05-01,3.5,EUR,completed\n"
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("TESSERA_DATA_DIR", str(data))
    mp.setenv("DAGSTER_HOME", str(data / "dagster_home"))
    capfd.readouterr()
    caplog.clear()
    try:
        from tessera.orchestration.run_cli import run

        assert run(days=1, end=END, full_each_day=False) == 1
    finally:
        mp.undo()
        bad.unlink()
    # Dagster's console: no stack trace, no ERROR line per skipped step.
    err = capfd.readouterr().err
    assert " - ERROR - " not in err, err
    assert "Stack Trace" not in err and "Traceback" not in err
    assert "Not executing" not in err
    # Ours: one record, the failed step and the file and column, in two lines.
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    message = errors[0].getMessage()
    assert len(message.splitlines()) == 2
    assert f"campaign date {END} failed at raw_tables" in message
    assert "part-extra.csv: missing column(s) amount" in message
