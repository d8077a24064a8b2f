"""A failed run alerts ops once, signed, with what to act on and no secret; config errors name
the variable; the freshness checks stay out of the daily job."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from tessera.activations.ops_alerts import (
    SECRET_VAR,
    URL_VAR,
    OpsAlertError,
    RunFailure,
    alert_message,
    alert_provider,
)
from tessera.activations.providers.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tessera.orchestration.defs.ops.freshness import FRESHNESS_CHECK_KEYS
from tessera.orchestration.defs.ops.sensors import failure_from_context, ops_run_failure_alert

OPS_SECRET = "ops-webhook-secret-0123456789"
API_KEY = "SG.live-key-that-must-never-leave"


@pytest.fixture
def receiver():
    """An HTTP receiver on 127.0.0.1 that keeps every POST (headers and body)."""
    posts: list[tuple[dict, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append((dict(self.headers), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", posts
    server.shutdown()


@dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date="2026-11-01"))
def broken_step() -> None:
    raise RuntimeError(f"landing failed: orders.csv row 7, column amount (key {API_KEY})")


def _failed_run_context():
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [broken_step], partition_key="2026-12-01", instance=instance, raise_on_error=False
    )
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    return dg.build_run_status_sensor_context(
        sensor_name=ops_run_failure_alert.name,
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=run,
    ).for_run_failure()


def test_a_failed_run_posts_one_signed_alert_naming_date_step_and_error(receiver, monkeypatch):
    url, posts = receiver
    monkeypatch.setenv(URL_VAR, url)
    monkeypatch.setenv(SECRET_VAR, OPS_SECRET)
    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
    monkeypatch.setenv("TESSERA_DAGSTER_URL", "http://127.0.0.1:3000/")
    context = _failed_run_context()
    ops_run_failure_alert(context)
    assert len(posts) == 1
    headers, body = posts[0]
    assert verify(OPS_SECRET, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    (message,) = json.loads(body)["messages"]
    data = message["data"]
    run_id = context.dagster_run.run_id
    assert message["message_key"] == f"ops:run_failure:{run_id}"
    assert data["partition"] == "2026-12-01"
    assert data["failed_steps"] == ["broken_step"]
    assert "orders.csv row 7, column amount" in data["error"]
    assert data["run_url"] == f"http://127.0.0.1:3000/runs/{run_id}"
    assert data["summary"] == f"{data['job']} failed for 2026-12-01: broken_step"
    assert API_KEY not in body.decode()  # the error's secret is redacted


def test_without_a_url_a_failure_is_only_logged(receiver, monkeypatch):
    _, posts = receiver
    monkeypatch.delenv(URL_VAR, raising=False)
    ops_run_failure_alert(_failed_run_context())
    assert posts == []


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({URL_VAR: "http://127.0.0.1:9/x"}, SECRET_VAR),
        ({URL_VAR: "ftp://x", SECRET_VAR: "s"}, URL_VAR),
    ],
)
def test_a_misconfigured_target_is_refused_naming_the_variable(env, named):
    with pytest.raises(OpsAlertError, match=named):
        alert_provider(env)


def test_a_long_error_is_cut_and_the_whole_trace_stays_in_dagster():
    failure = RunFailure("daily_pipeline", "r1", None, (), "x" * 5000)
    message = alert_message(failure, {})
    assert len(message.data["error"]) < 1100
    assert message.data["summary"] == "daily_pipeline failed: no step started"


def test_freshness_checks_are_the_sensors_not_the_daily_jobs():
    from tessera.orchestration.definitions import defs

    definitions = defs()
    job = definitions.resolve_job_def("daily_pipeline")
    in_job = set(job.asset_layer.asset_graph.asset_check_keys)
    assert not in_job & set(FRESHNESS_CHECK_KEYS)
    all_checks = {k for c in definitions.asset_checks for k in c.check_keys}
    assert set(FRESHNESS_CHECK_KEYS) <= all_checks
    assert definitions.resolve_sensor_def("daily_freshness_checks") is not None


def test_failure_context_lists_each_failed_step_once():
    failure = failure_from_context(_failed_run_context())
    assert failure.failed_steps == ("broken_step",)
