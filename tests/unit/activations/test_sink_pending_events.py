"""The sink never reports an event before it has happened: later ones wait, on disk."""

from pathlib import Path

from tessera.activations.sink import EventEmitter


def _emitter(tmp_path: Path, now: list[float]) -> EventEmitter:
    emitter = EventEmitter(
        None, None, seed=1, pending_path=tmp_path / "pending.jsonl", clock=lambda: now[0]
    )
    return emitter


def test_future_events_are_held_until_their_time(tmp_path: Path) -> None:
    now = [1_000.0]
    emitter = _emitter(tmp_path, now)
    try:
        due = emitter._due(
            [{"timestamp": 900, "event": "delivered"}, {"timestamp": 1_500, "event": "open"}]
        )
        assert [e["event"] for e in due] == ["delivered"]
        assert emitter.pending_events == 1
        now[0] = 2_000.0
        assert [e["event"] for e in emitter._due([])] == ["open"]
        assert emitter.pending_events == 0
    finally:
        emitter.close()


def test_pending_events_survive_a_restart_of_the_sink(tmp_path: Path) -> None:
    now = [1_000.0]
    first = _emitter(tmp_path, now)
    first._due([{"timestamp": 1_500, "event": "click"}])
    first.close()
    now[0] = 1_600.0
    second = _emitter(tmp_path, now)
    try:
        assert [e["event"] for e in second._due([])] == ["click"]
    finally:
        second.close()
