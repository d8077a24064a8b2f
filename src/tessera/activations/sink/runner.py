"""``running_sink``: the sink and, by default, Tessera's event endpoint on 127.0.0.1 threads."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tessera.activations.signing import load_or_create_private_key, public_key_b64
from tessera.activations.sink.emitter import EventEmitter
from tessera.activations.sink.faults import FaultPlan
from tessera.activations.sink.server import SinkServer
from tessera.activations.sink.state import SinkState


@dataclass
class SinkHandle:
    """A running sink (and, unless an external one is used, the event endpoint)."""

    url: str
    events_url: str | None
    public_key: str
    folder: Path
    server: SinkServer = field(repr=False)

    def stats(self) -> dict:
        return self.server.state.stats()

    def set_faults(self, plan: FaultPlan | None) -> None:
        self.server.set_faults(plan or FaultPlan())

    def flush(self, timeout: float = 120.0) -> None:
        self.server.emitter.flush(timeout)

    def received(self) -> list[dict]:
        """Every message received, except those of cancelled scheduled batches (discarded)."""
        state = self.server.state
        with open(state.received_path, encoding="utf-8") as fh:
            records = [json.loads(line) for line in fh]
        return [r for r in records if not state.is_cancelled(r.get("batch_id"))]


@contextmanager
def running_sink(
    data_dir: Path | str,
    port: int = 0,
    landing_dir: Path | str | None = None,
    events_url: str | None = None,
    with_events: bool = True,
    events_port: int = 0,
    seed: int = 0,
    faults: FaultPlan | None = None,
    api_key: str | None = None,
    webhook_secret: str | None = None,
    track: Any = None,
) -> Iterator[SinkHandle]:
    """Run the sink (state in ``data_dir/sink``) and, by default, Tessera's event endpoint
    landing into ``landing_dir`` (default ``data_dir/landing``), both on 127.0.0.1 threads."""
    data_dir = Path(data_dir)
    folder = data_dir / "sink"
    key = load_or_create_private_key(folder / "event_webhook_private_key.pem")
    pub = public_key_b64(key)
    with _maybe_events(
        with_events and events_url is None,
        data_dir,
        landing_dir,
        pub,
        events_port,
        track,
    ) as own_url:
        target = events_url or own_url
        state = SinkState(folder)
        emitter = EventEmitter(target, key, seed, pending_path=folder / "pending_events.jsonl")
        emitter.is_cancelled = state.is_cancelled
        server = SinkServer(port, state, emitter, api_key, webhook_secret, faults or FaultPlan())
        thread = threading.Thread(target=server.serve_forever, name="tessera-sink", daemon=True)
        thread.start()
        handle = SinkHandle(
            f"http://127.0.0.1:{server.server_address[1]}", target, pub, folder, server
        )
        try:
            yield handle
        finally:
            emitter.flush(timeout=60)
            server.shutdown()
            server.server_close()
            emitter.close()
            state.close()


@contextmanager
def _maybe_events(
    enabled: bool,
    data_dir: Path,
    landing_dir: Path | str | None,
    pub: str,
    port: int,
    track: Any = None,
) -> Iterator[str | None]:
    """The built-in event endpoint (and, with ``track``, the journeys' collector beside it)."""
    from tessera.activations.events import EventReceiver, running_events

    if not enabled:
        yield None
        return
    receiver = EventReceiver(Path(landing_dir) if landing_dir else Path(data_dir) / "landing", pub)
    with running_events(receiver, port=port, track=track) as url:
        yield url
