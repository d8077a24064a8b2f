"""The campaign date's core work on a warehouse connection, without Dagster."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tessera.campaigns import daily
from tessera.campaigns.engine import assign_campaigns

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "campaigns"))
from campaign_builders import D0, make_catalog, membership  # noqa: E402

pytestmark = pytest.mark.integration


def _warehouse(groups: dict[str, list[str]]) -> tuple[duckdb.DuckDBPyConnection, pd.DataFrame]:
    con = duckdb.connect()
    frame = membership(groups)
    frame.insert(0, "as_of_date", D0)
    con.execute("create schema segments")
    con.register("m", frame)
    con.execute("create table segments.segment_membership as select * from m")
    con.unregister("m")
    return con, frame


def test_a_date_without_exclusions_still_creates_the_exclusions_table_and_the_matrix():
    catalog = make_catalog([{"id": "welcome", "target_groups": ["g_all"]}])
    con, _ = _warehouse({f"c{i}": ["g_all"] for i in range(5)})
    run = daily.build_assignments(con, catalog, D0)
    assert len(run.assignments) == 5 and run.exclusions.empty
    assert con.execute("select count(*) from campaigns.exclusions").fetchall() == [(0,)]
    matrix = daily.build_matrix(con, catalog, D0)
    assert matrix.customers_assigned == 5
    assert matrix.exclusions_by_reason["pairs"].sum() == 0


def test_the_matrix_table_is_the_engines_matrix_of_the_date():
    catalog = make_catalog(
        [
            {"id": "welcome", "target_groups": ["g_new"]},
            {"id": "winback", "target_groups": ["g_old"], "channels": ["sms"]},
        ]
    )
    groups = {f"c{i}": (["g_new"] if i % 3 else ["g_old", "g_new"]) for i in range(30)}
    con, frame = _warehouse(groups)
    daily.build_assignments(con, catalog, D0)
    daily.build_matrix(con, catalog, D0)
    written = con.sql("select * from campaigns.campaign_matrix").to_arrow_table()
    expected = assign_campaigns(frame, catalog, D0, None).matrix
    assert written.num_rows == 2
    assert written.equals(expected)


def _gc_catalog(salt: str = "s1"):
    return make_catalog(
        [{"id": "promo", "target_groups": ["g_all"]}],
        global_control={"share": 0.1, "salt": salt},
    )


def test_global_control_members_and_salt_changes_are_written_and_reruns_are_safe():
    import datetime as dt

    from tessera.campaigns import global_control

    groups = {f"c{i:03d}": ["g_all"] for i in range(400)}
    con, frame = _warehouse(groups)
    day2 = D0 + dt.timedelta(days=1)
    other = frame.assign(as_of_date=day2)
    con.register("o", other)
    con.execute("insert into segments.segment_membership select * from o")
    con.unregister("o")
    run = daily.build_assignments(con, _gc_catalog(), D0)
    expected = {
        c for c in groups if global_control.is_member(_gc_catalog().policies.global_control, c)
    }
    members = con.execute(
        "select customer_id from campaigns.global_control where as_of_date = $d", {"d": D0}
    ).df()
    assert set(members["customer_id"]) == expected and run.global_control_members == len(expected)
    assert run.global_control_violations == 0
    daily.build_assignments(con, _gc_catalog(), D0)  # rerun: same rows, one salt row
    daily.build_assignments(con, _gc_catalog(), day2)  # same salt: no new salt row
    salts = con.execute("select as_of_date, salt from campaigns.global_control_salts").fetchall()
    assert salts == [(D0, "s1")]
    daily.build_assignments(con, _gc_catalog("s2"), day2)  # the salt changed on day2
    daily.build_assignments(con, _gc_catalog("s2"), day2)
    salts = con.execute(
        "select as_of_date, salt from campaigns.global_control_salts order by 1"
    ).fetchall()
    assert salts == [(D0, "s1"), (day2, "s2")]
    daily.build_assignments(con, _gc_catalog("s1"), day2)  # back to s1: day2 changed nothing
    salts = con.execute("select as_of_date, salt from campaigns.global_control_salts").fetchall()
    assert salts == [(D0, "s1")]


def test_programme_results_compare_the_programme_with_the_global_control():
    import datetime as dt

    from tessera.activations.measurement import measure_programme
    from tessera.campaigns import global_control

    groups = {f"c{i:03d}": ["g_all"] for i in range(600)}
    con, _ = _warehouse(groups)
    catalog = _gc_catalog()
    daily.build_assignments(con, catalog, D0)
    policy = catalog.policies.global_control
    # every treated customer orders 20 once; every fifth control customer orders 10
    held = sorted(c for c in groups if global_control.is_member(policy, c))
    treated = sorted(set(groups) - set(held))
    orders = pd.DataFrame(
        {
            "customer_id": treated + held[::5],
            "ordered_at": pd.Timestamp(D0) + pd.Timedelta(hours=12),
            "amount": [20.0] * len(treated) + [10.0] * len(held[::5]),
            "status": "completed",
        }
    )
    con.execute("create schema marts")
    con.register("ord", orders)
    con.execute("create table marts.fct_orders as select * from ord")
    day = D0 + dt.timedelta(days=3)
    measured = measure_programme(con, day, window_days=7)
    top = measured.programme
    assert (top["treatment_n"], top["control_n"]) == (len(treated), len(held))
    assert top["treatment_rate"] == 1.0
    assert top["control_rate"] == pytest.approx(len(held[::5]) / len(held))
    assert top["abs_lift_ci_low"] < top["abs_lift"] < top["abs_lift_ci_high"]
    rpc_c = 10.0 * len(held[::5]) / len(held)
    assert top["revenue_lift_per_customer"] == pytest.approx(20.0 - rpc_c)
    assert top["incremental_revenue"] == pytest.approx((20.0 - rpc_c) * len(treated))
    promo = measured.results[measured.results["campaign_id"] == "promo"].iloc[0]
    assert (promo["treatment_n"], promo["control_n"]) == (len(treated), len(held))
    stored = con.execute("select count(*) from activations.programme_results").fetchall()
    assert stored == [(2,)]
    last = measured.series[measured.series["date"] == measured.series["date"].max()]
    assert set(last["arm"]) == {"programme", "global_control"}
    assert measure_programme(con, day, window_days=7).results.equals(measured.results)


def test_cli_lists_the_global_control_members_of_a_date(tmp_path, capsys):
    from tessera.campaigns import global_control
    from tessera.cli import main

    groups = {f"c{i:03d}": ["g_all"] for i in range(300)}
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    frame = membership(groups)
    frame.insert(0, "as_of_date", D0)
    con.execute("create schema segments")
    con.register("m", frame)
    con.execute("create table segments.segment_membership as select * from m")
    daily.build_assignments(con, _gc_catalog(), D0)
    con.close()
    code = main(["campaigns", "global-control", "--date", str(D0), "--data-dir", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and lines[0] == "customer_id,micro_segment_id"
    policy = _gc_catalog().policies.global_control
    assert [ln.split(",")[0] for ln in lines[1:]] == sorted(
        c for c in groups if global_control.is_member(policy, c)
    )
    code = main(
        ["campaigns", "global-control", "--date", "2030-01-01", "--data-dir", str(tmp_path)]
    )
    assert code == 2


def test_programme_notes_a_salt_change_after_the_arms_were_taken_but_not_the_start():
    import datetime as dt

    from tessera.activations.measurement import measure_programme

    groups = {f"c{i:03d}": ["g_all"] for i in range(100)}
    con, frame = _warehouse(groups)
    day2 = D0 + dt.timedelta(days=1)
    con.register("o", frame.assign(as_of_date=day2))
    con.execute("insert into segments.segment_membership select * from o")
    con.unregister("o")
    con.execute("create schema marts")
    con.execute(
        "create table marts.fct_orders (customer_id varchar, ordered_at timestamp,"
        " amount double, status varchar)"
    )
    daily.build_assignments(con, _gc_catalog(), D0)
    daily.build_assignments(con, _gc_catalog(), day2)
    later = D0 + dt.timedelta(days=3)
    assert not any("salt" in n for n in measure_programme(con, later, 7).notes)
    daily.build_assignments(con, _gc_catalog("s2"), day2)
    assert any(
        "changed inside the window (on " + str(day2) in n
        for n in measure_programme(con, later, 7).notes
    )
