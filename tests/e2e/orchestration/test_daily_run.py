"""`tessera run` end to end on a small shop: every layer fills, for each date, and reruns are safe."""

import contextlib
import datetime as dt
import io
import json
import logging
import re
import shutil
from pathlib import Path

import duckdb
import pytest

DATES = 2


@pytest.fixture(scope="module")
def daily_run(
    small_shop_landing: Path, small_shop_end: dt.date, tmp_path_factory: pytest.TempPathFactory
):
    """Two campaign dates of the real daily job, as `make run` does, on a copy of the shop."""
    data = tmp_path_factory.mktemp("e2e-data")
    shutil.copytree(small_shop_landing, data / "landing")
    mp = pytest.MonkeyPatch()
    mp.setenv("TESSERA_DATA_DIR", str(data))
    mp.setenv("DAGSTER_HOME", str(data / "dagster_home"))
    from tessera.orchestration.run_cli import run

    end = small_shop_end
    # The terminal as `tessera run` sets it up (tessera.cli.main): root at WARNING, Tessera's
    # own loggers at INFO; Dagster's console logger writes to stderr.
    terminal = io.StringIO()
    handler = logging.StreamHandler(terminal)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root, ours = logging.getLogger(), logging.getLogger("tessera")
    before = (root.level, ours.level)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    ours.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stderr(terminal):
            code = run(days=DATES, end=end, full_each_day=False)
        yield data, code, end, terminal.getvalue()
    finally:
        root.removeHandler(handler)
        root.setLevel(before[0])
        ours.setLevel(before[1])
        mp.undo()


def _count(data: Path, sql: str) -> int:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()[0][0]


def test_run_succeeds_and_prints_a_line_per_date_and_no_step_progress(daily_run) -> None:
    _, code, _, terminal = daily_run
    assert code == 0
    assert (
        len(re.findall(r"INFO tessera.orchestration.run_cli: campaign date \S+ done", terminal))
        == 2
    )
    # The steps' INFO lines (quality verdicts, sends, libraries) stay in the run's logs.
    info = re.findall(r"^\S+ \S+ INFO (\S+):", terminal, flags=re.MULTILINE)
    assert set(info) == {"tessera.orchestration.run_cli"}
    assert " - INFO - " not in terminal and "instead of an `AssetCheckResult`" not in terminal
    # A step's warning is printed once (by Dagster's console logger), not again by the root's.
    messages = [
        line.rsplit(" - ", 1)[-1] for line in terminal.splitlines() if " - WARNING - " in line
    ]
    again = [m for m in messages if sum(m in line for line in terminal.splitlines()) > 1]
    assert again == []


@pytest.mark.parametrize(
    "table",
    [
        "marts.customer_features",
        "ml.customer_scores",
        "segments.segment_membership",
        "campaigns.campaign_assignments",
        "campaigns.campaign_matrix",
        "activations.outbound_messages",
    ],
)
def test_every_layer_has_rows_for_each_campaign_date(daily_run, table: str) -> None:
    data, _, end, _ = daily_run
    dates = _count(data, f"select count(distinct as_of_date) from {table}")
    assert dates == DATES, f"{table}: {dates} dates"
    last = _count(data, f"select count(*) from {table} where as_of_date = '{end}'")
    assert last > 0


def test_features_cover_every_customer_created_before_the_date(daily_run) -> None:
    data, _, end, _ = daily_run
    customers = _count(data, f"select count(*) from marts.dim_customers where created_at < '{end}'")
    features = _count(
        data, f"select count(*) from marts.customer_features where as_of_date = '{end}'"
    )
    assert features == customers


def test_sends_reached_the_local_sink_once_per_message(daily_run) -> None:
    data, _, _, _ = daily_run
    sent = _count(data, "select count(*) from activations.deliveries where status = 'sent'")
    keys = _count(data, "select count(distinct message_key) from activations.deliveries")
    assert sent > 0
    assert sent == keys


def test_every_request_of_the_demo_days_is_accepted_by_the_strict_sink(daily_run) -> None:
    """The local sink applies SendGrid's documented rules: the demo's requests pass them all."""
    data, _, _, _ = daily_run
    lines = (data / "sink" / "requests.jsonl").read_text().splitlines()
    mail = [json.loads(line) for line in lines if '"/v3/mail/send"' in line]
    assert mail and {r["status"] for r in mail} == {202}
    failed = _count(data, "select count(*) from activations.deliveries where status <> 'sent'")
    assert failed == 0


def test_rerunning_the_last_date_changes_nothing(daily_run) -> None:
    data, _, end, _ = daily_run
    query = (
        "select count(*), sum(hash(customer_id, campaign_id, is_control)) "
        f"from campaigns.campaign_assignments where as_of_date = '{end}'"
    )
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        before = con.execute(query).fetchall()
        sent_before = con.execute("select count(*) from activations.deliveries").fetchall()
    mp = pytest.MonkeyPatch()
    mp.setenv("TESSERA_DATA_DIR", str(data))
    mp.setenv("DAGSTER_HOME", str(data / "dagster_home"))
    try:
        from tessera.orchestration.run_cli import run

        assert run(days=1, end=end, full_each_day=False) == 0
    finally:
        mp.undo()
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute(query).fetchall() == before
        assert con.execute("select count(*) from activations.deliveries").fetchall() == sent_before


def test_campaign_dates_are_the_last_n_days_in_order() -> None:
    from tessera.orchestration.run_cli import campaign_dates

    assert campaign_dates(dt.date(2026, 3, 2), 3) == ["2026-02-28", "2026-03-01", "2026-03-02"]
    with pytest.raises(ValueError, match="--days must be at least 1"):
        campaign_dates(dt.date(2026, 3, 2), 0)
