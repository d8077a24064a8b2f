"""`python -m tessera.bench.journeys`: event -> sink latency and tick throughput of the journeys.

A steady stream of ``add_to_cart`` events is posted over HTTP to the collector
(``POST /v1/track``) while ticks run at the sensor's interval in this process; one trigger sends
at once (``wait: 0m``), keyed by customer and product so that every event is one message. Per
message: the collector's acceptance time to the local sink's acceptance time. Reported: p50 and
p95, messages expected, received, lost and duplicated, and the ticks' evaluation throughput.

``during`` (``make bench`` passes the real daily job in a child process) is started once in the
middle of the load; the messages whose events were accepted while it ran get their own p95.
The journeys keep their own state store, so what the daily job takes from them is CPU and disk.

Not included: Dagster's own run start-up after a sensor tick (the field notes report ~5-17 s on
a busy machine); add it when reading the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger("bench.journeys")

KEY = "bench-key-0123456789abcdef"


def _catalog():
    from tessera.campaigns.catalog import Trigger, load_catalog
    from tessera.settings import load_settings

    catalog = load_catalog(load_settings().catalog_path)
    bench = Trigger.model_validate(
        {
            "id": "bench_instant",
            "entry": {"event": "add_to_cart"},
            "key_by": ["product_id"],
            "re_entry": "never",
            "steps": [
                {"id": "now", "wait": "0m", "channel": "email", "template": "em_cart_reminder"}
            ],
        }
    )
    policies = catalog.policies.model_copy(update={"caps": []})
    return catalog.model_copy(update={"triggers": [bench], "policies": policies})


def _snapshot(customers: int):
    from tessera.activations.suppressions import SUPPRESSION_COLUMNS
    from tessera.journeys.snapshot import HISTORY_COLUMNS, Snapshot

    ids = [f"c{i:06d}" for i in range(customers)]
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "email": [f"{c}@example.com" for c in ids],
            "phone": None,
            "is_email_reachable": True,
            "is_sms_reachable": False,
            "is_direct_mail_reachable": True,
            "is_webhook_reachable": False,
            "is_always_excluded": False,
        }
    )
    return Snapshot(
        as_of=dt.date.today(),
        taken_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
        customers=frame,
        suppressions=pd.DataFrame(columns=SUPPRESSION_COLUMNS),
        daily_history=pd.DataFrame(columns=HISTORY_COLUMNS),
    )


def _post(url: str, events: list[dict]) -> dict:
    request = urllib.request.Request(
        url,
        data=json.dumps({"events": events}).encode(),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


class _Midway:
    """Runs ``during`` once, ``delay`` seconds after ``start()``, in a thread, with its timing."""

    def __init__(self, during: Callable[[], dict[str, Any]] | None, delay: float) -> None:
        self.during = during
        self.delay = delay
        self.outcome: dict[str, Any] | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self._thread = threading.Thread(target=self._run, name="bench-midway", daemon=True)

    def _run(self) -> None:
        time.sleep(self.delay)
        self.started_at = time.time()
        try:
            self.outcome = self.during() if self.during else None
        except Exception as exc:  # reported with the figures, not raised in a thread
            log.exception("the job run during the load failed")
            self.outcome = {"status": "failed", "note": f"{type(exc).__name__}: {exc}"}
        finally:
            self.finished_at = time.time()

    def start(self) -> None:
        if self.during is not None:
            self._thread.start()

    def join(self) -> None:
        if self.during is not None:
            self._thread.join()

    def report(self, t0_epoch: float, load_end_epoch: float) -> dict[str, Any] | None:
        if self.during is None or self.started_at is None or self.finished_at is None:
            return None
        overlap = max(0.0, min(self.finished_at, load_end_epoch) - self.started_at)
        return {
            **(self.outcome or {}),
            "started_after_s": round(self.started_at - t0_epoch, 1),
            "wall_seconds": round(self.finished_at - self.started_at, 1),
            "overlap_s": round(overlap, 1),
        }


def _quantile(values: pd.Series, q: float) -> float | None:
    return round(float(values.quantile(q)), 2) if len(values) else None


def run(
    rate: float,
    seconds: float,
    interval: float,
    batch: int,
    customers: int,
    during: Callable[[], dict[str, Any]] | None = None,
) -> dict:
    from tessera.activations.events import EventReceiver, ExtraRoute, running_events
    from tessera.activations.sender import RetryPolicy
    from tessera.activations.settings import SendSettings
    from tessera.activations.sink import running_sink
    from tessera.journeys import store
    from tessera.journeys.engine import run_tick
    from tessera.journeys.intake import TRACK_PATH, TrackReceiver
    from tessera.journeys.paths import JourneyPaths

    catalog = _catalog()
    snap = _snapshot(customers)
    with tempfile.TemporaryDirectory(prefix="tessera-journey-bench-") as tmp:
        data = Path(tmp)
        paths = JourneyPaths.of(data)
        track = TrackReceiver(data, {"bench": KEY})
        endpoint = EventReceiver(data / "landing", "unused")
        with (
            running_sink(data, with_events=False) as sink,
            running_events(endpoint, track=ExtraRoute(TRACK_PATH, track)) as events_url,
        ):
            url = events_url.rsplit("/events", 1)[0] + TRACK_PATH
            providers = SendSettings(sink_url=sink.url).build_providers(data / "outbox")
            con = store.connect(str(paths.state_path))
            accepted = 0
            stop = threading.Event()

            def produce() -> None:
                nonlocal accepted
                n = 0
                started = time.monotonic()
                while not stop.is_set() and n < rate * seconds:
                    due = started + n / rate
                    time.sleep(max(0.0, due - time.monotonic()))
                    now = time.time()
                    events = [
                        {
                            "event_id": f"b{n + i}",
                            "customer_id": f"c{(n + i) % customers:06d}",
                            "type": "add_to_cart",
                            "product_id": f"p{(n + i) // customers}",
                            "timestamp": now,
                        }
                        for i in range(batch)
                    ]
                    accepted += _post(url, events)["accepted"]
                    n += batch

            producer = threading.Thread(target=produce, daemon=True)
            midway = _Midway(during, seconds / 2)
            t0, t0_epoch = time.monotonic(), time.time()
            producer.start()
            midway.start()
            ticks: list[tuple[float, int]] = []
            # ticks at the sensor's interval until the stream ends, then one last tick
            while producer.is_alive() or not ticks or ticks[-1][1] > 0:
                wait = interval - ((time.monotonic() - t0) % interval)
                time.sleep(wait if producer.is_alive() else 0)
                started = time.perf_counter()
                report = run_tick(
                    con,
                    catalog,
                    snap,
                    paths=paths,
                    providers=providers,
                    now=dt.datetime.now(dt.UTC),
                    policy=RetryPolicy(base_delay_s=0.05),
                )
                ticks.append((time.perf_counter() - started, report.ingested))
                log.info(
                    "tick: %d events in %.2f s, sent %d", report.ingested, ticks[-1][0], report.sent
                )
            stop.set()
            producer.join()
            load_end_epoch = time.time()
            # A job that outlasts the load is waited for: its child must not outlive the bench.
            midway.join()
            latency = con.execute(
                "select s.message_key, epoch(e.received_at) as accepted_at from journeys.steps s "
                "join journeys.entries e using (entry_id) where s.message_key is not null"
            ).df()
            con.close()
            received = pd.DataFrame(sink.received())
    sink_at = received.groupby("message_key")["received_at"].min()
    lat = latency.set_index("message_key")["accepted_at"]
    seconds_each = (sink_at.reindex(lat.index) - lat).dropna()
    job = midway.report(t0_epoch, load_end_epoch)
    if job is not None:
        assert midway.started_at is not None and midway.finished_at is not None
        inside = lat[(lat >= midway.started_at) & (lat <= midway.finished_at)].index
        during_job = seconds_each.reindex(inside).dropna()
        job.update(
            messages=len(during_job),
            latency_p50_s=_quantile(during_job, 0.5),
            latency_p95_s=_quantile(during_job, 0.95),
        )
    busy = sum(t for t, _ in ticks)
    evaluated = sum(n for _, n in ticks)
    return {
        "rate_events_per_s": rate,
        "seconds": seconds,
        "interval_s": interval,
        "events_accepted": accepted,
        "messages_expected": accepted,
        "messages_received": int(received["message_key"].nunique()) if len(received) else 0,
        "lost": accepted - (int(received["message_key"].nunique()) if len(received) else 0),
        "duplicates": int(len(received) - received["message_key"].nunique())
        if len(received)
        else 0,
        "latency_p50_s": _quantile(seconds_each, 0.5),
        "latency_p95_s": _quantile(seconds_each, 0.95),
        "ticks": len(ticks),
        "tick_seconds_max": round(max(t for t, _ in ticks), 2),
        "evaluation_events_per_s": round(evaluated / busy, 1) if busy else None,
        "during_job": job,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=300.0, help="how long to post")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between ticks")
    parser.add_argument("--batch", type=int, default=10, help="events per post")
    parser.add_argument("--customers", type=int, default=20_000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = run(args.rate, args.seconds, args.interval, args.batch, args.customers)
    print(json.dumps(result, indent=2))  # noqa: T201 - the bench's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
