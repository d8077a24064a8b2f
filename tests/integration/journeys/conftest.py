"""A journey world: the demo catalog, a hand-made warehouse snapshot, the collector, the sink."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from tessera.activations.sender import RetryPolicy
from tessera.activations.settings import SendSettings
from tessera.campaigns.catalog import load_catalog
from tessera.journeys import store
from tessera.journeys.engine import TickReport, run_tick
from tessera.journeys.intake import TrackReceiver
from tessera.journeys.paths import JourneyPaths
from tessera.journeys.snapshot import HISTORY_COLUMNS, Snapshot

DEMO = Path(__file__).resolve().parents[3] / "src" / "tessera" / "campaigns" / "catalog.yml"
KEY = "test-web-key-0123456789"
T0 = dt.datetime(2026, 12, 3, 10, 0, 0)
FAST = RetryPolicy(base_delay_s=0.01, max_attempts=3)


def customer(cid: str, **extra: object) -> dict:
    row = {
        "customer_id": cid,
        "email": f"{cid}@example.com",
        "phone": None,
        "first_name": "Ann",
        "is_email_reachable": True,
        "is_sms_reachable": False,
        "is_direct_mail_reachable": True,
        "is_webhook_reachable": False,
        "is_always_excluded": False,
        "clv_tier": "clv_low",
        "target_groups": [],
        "prev_target_groups": [],
    }
    row.update(extra)
    return row


@dataclass
class World:
    data_dir: Path
    sink: object
    catalog: object = field(default_factory=lambda: load_catalog(DEMO))
    customers: list[dict] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    suppressions: pd.DataFrame | None = None
    as_of: dt.date = dt.date(2026, 12, 3)

    def __post_init__(self) -> None:
        self.paths = JourneyPaths.of(self.data_dir)
        self.paths.root.mkdir(parents=True, exist_ok=True)
        self.receiver = TrackReceiver(
            self.data_dir, {"web": KEY}, clock=lambda: T0.timestamp() + 86_400 * 30
        )
        self.con = store.connect(str(self.paths.state_path))
        self.providers = SendSettings(sink_url=self.sink.url).build_providers(
            self.data_dir / "outbox"
        )

    def post(self, *events: dict) -> dict:
        status, reply = self.receiver.handle(
            json.dumps({"events": list(events)}).encode(), {"Authorization": f"Bearer {KEY}"}
        )
        assert status == 200, reply
        return reply

    def snapshot(self, taken_at: dt.datetime) -> Snapshot:
        from tessera.activations.suppressions import SUPPRESSION_COLUMNS

        return Snapshot(
            as_of=self.as_of,
            taken_at=taken_at,
            customers=pd.DataFrame(self.customers),
            suppressions=self.suppressions
            if self.suppressions is not None
            else pd.DataFrame(columns=SUPPRESSION_COLUMNS),
            daily_history=pd.DataFrame(self.history, columns=HISTORY_COLUMNS),
        )

    def tick(self, at: dt.datetime, **kwargs) -> TickReport:
        return run_tick(
            self.con,
            self.catalog,
            self.snapshot(at),
            paths=self.paths,
            providers=self.providers,
            now=at,
            policy=FAST,
            **kwargs,
        )

    def received(self) -> list[dict]:
        return self.sink.received()

    def keys_sent(self) -> pd.Series:
        return pd.Series([r["message_key"] for r in self.received()], dtype="object")

    def steps(self) -> pd.DataFrame:
        return self.con.execute(
            "select trigger_id, customer_id, step_id, status, reason from journeys.steps "
            "order by trigger_id, customer_id, step_index"
        ).df()


def event(n: int, cid: str, kind: str, at: dt.datetime, **extra: object) -> dict:
    return {
        "event_id": f"e{n}",
        "customer_id": cid,
        "type": kind,
        "timestamp": at.replace(tzinfo=dt.UTC).isoformat(),
        **extra,
    }


@pytest.fixture
def world(tmp_path):
    from tessera.activations.sink import running_sink

    with running_sink(tmp_path / "data", with_events=False) as sink:
        w = World(tmp_path / "data", sink)
        try:
            yield w
        finally:
            w.con.close()
