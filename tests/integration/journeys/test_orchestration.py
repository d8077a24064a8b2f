"""The journey sensor and jobs: cursor, no double ticks, and a tick while the warehouse is held."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
import uuid

import dagster as dg

from tessera.journeys.paths import JourneyPaths
from tessera.journeys.snapshot import write_snapshot
from tessera.orchestration.defs.activations.resources import ActivationSettings
from tessera.orchestration.defs.campaigns.resources import CampaignCatalog
from tessera.orchestration.defs.journeys.jobs import journey_tick
from tessera.orchestration.defs.journeys.sensors import journey_queue
from tessera.orchestration.defs.resources import DataStorage
from tests.integration.journeys.conftest import DEMO, customer, event


def _evaluate(instance, storage, cursor=None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"storage": storage}
    )
    return journey_queue(context)


def test_sensor_requests_a_snapshot_then_ticks_for_new_events_only(world):
    instance = dg.DagsterInstance.ephemeral()
    storage = DataStorage(data_dir=str(world.data_dir))
    first = _evaluate(instance, storage)
    assert [r.job_name for r in first.run_requests] == ["journey_snapshot"]
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    write_snapshot(world.paths, world.snapshot(now))
    assert _evaluate(instance, storage).run_requests == []
    world.post(event(1, "c1", "add_to_cart", now - dt.timedelta(minutes=1), product_id="p1"))
    result = _evaluate(instance, storage)
    assert [r.job_name for r in result.run_requests] == ["journey_tick"]
    again = _evaluate(instance, storage, cursor=result.cursor)
    assert again.run_requests == []  # nothing new since the cursor
    # a step that has come due requests a tick without new events
    (world.paths.next_due_path).write_text((now - dt.timedelta(seconds=5)).isoformat())
    due = _evaluate(instance, storage, cursor=result.cursor)
    assert [r.job_name for r in due.run_requests] == ["journey_tick"]


def test_a_failed_tick_is_requested_again_without_waiting_for_new_events(world):
    instance = dg.DagsterInstance.ephemeral()
    storage = DataStorage(data_dir=str(world.data_dir))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    write_snapshot(world.paths, world.snapshot(now))
    world.post(event(1, "c1", "add_to_cart", now - dt.timedelta(minutes=1), product_id="p1"))
    first = _evaluate(instance, storage)
    assert [r.job_name for r in first.run_requests] == ["journey_tick"]
    instance.add_run(
        dg.DagsterRun(job_name="journey_tick", run_id=str(uuid.uuid4()),
                      status=dg.DagsterRunStatus.FAILURE)
    )  # fmt: skip
    retried = _evaluate(instance, storage, cursor=first.cursor)
    assert [r.job_name for r in retried.run_requests] == ["journey_tick"]


HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("create table if not exists t as select 1 as x")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_a_tick_runs_and_sends_while_another_process_holds_the_warehouse(world, tmp_path):
    from tests.integration.journeys.test_journeys import treated

    (cid,) = treated(world, "cart_abandonment", 1)
    warehouse = world.data_dir / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(warehouse), "30"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"  # the daily job's writer
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        world.customers = [customer(cid)]
        write_snapshot(JourneyPaths.of(world.data_dir), world.snapshot(now))
        world.post(event(1, cid, "add_to_cart", now - dt.timedelta(minutes=31), product_id="p1"))
        world.con.close()  # the job opens the state store itself
        started = time.perf_counter()
        result = journey_tick.execute_in_process(
            resources={
                "storage": DataStorage(data_dir=str(world.data_dir)),
                "campaign_catalog": CampaignCatalog(path=str(DEMO)),
                "activation": ActivationSettings(sink_url=world.sink.url, base_delay_s=0.01),
            }
        )
        assert result.success
        assert time.perf_counter() - started < 20
        assert holder.poll() is None  # the warehouse was held the whole time
        assert [r["customer_id"] for r in world.received()] == [cid]
    finally:
        holder.kill()
        holder.wait()
        world.con = __import__("duckdb").connect(str(world.paths.state_path))


def test_journey_results_asset_shows_the_funnel(world):
    from tessera.orchestration.defs.journeys.assets import journey_results
    from tests.integration.journeys.conftest import T0
    from tests.integration.journeys.test_journeys import treated

    (cid,) = treated(world, "cart_abandonment", 1)
    world.customers = [customer(cid)]
    world.post(event(1, cid, "add_to_cart", T0, product_id="p1"))
    world.tick(T0 + dt.timedelta(minutes=31))
    result = dg.materialize(
        [journey_results], resources={"storage": DataStorage(data_dir=str(world.data_dir))}
    )
    assert result.success
    meta = result.asset_materializations_for_node("activations__journey_results")[0].metadata
    assert meta["entries"].value == 1
    assert "cart_abandonment" in meta["funnel"].value
    assert "trigger_cart_abandonment" in meta["results"].value
