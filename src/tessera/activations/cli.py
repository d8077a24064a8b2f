"""`tessera sink` (local SendGrid/Twilio stand-in + event endpoint) and `tessera events serve`."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    sink = subparsers.add_parser(
        "sink",
        help="run the local provider sink (SendGrid v3 mail/send, Twilio SMS, webhook) on 127.0.0.1",
        description="Accepts SendGrid and Twilio requests like the real services, records them "
        "under DATA_DIR/sink, can inject faults, and posts signed delivery/open/click/... events "
        "to Tessera's event endpoint (started in the same process unless --events-url is given).",
    )
    sink.add_argument("--port", type=int, default=8725, help="listen port (default 8725)")
    sink.add_argument("--data-dir", type=Path, default=None, help="default: TESSERA_DATA_DIR")
    sink.add_argument("--events-url", default=None, help="post events to this endpoint instead")
    sink.add_argument("--events-port", type=int, default=8726, help="port of the built-in endpoint")
    sink.add_argument("--no-events", action="store_true", help="emit no provider events")
    sink.add_argument("--seed", type=int, default=0, help="seed of the response model and faults")
    sink.add_argument("--fault-rate", type=float, default=0.0, help="share of requests to fault")
    sink.add_argument("--fault-kinds", default="429", help="comma list of 429,500,503,slow,drop")
    sink.set_defaults(func=_run_sink)

    events = subparsers.add_parser("events", help="Tessera's provider event endpoint")
    events_sub = events.add_subparsers(dest="events_command", metavar="ACTION")
    serve = events_sub.add_parser(
        "serve",
        help="verify signed SendGrid event-webhook posts and land them as files; with "
        "TESSERA_TRACK_KEYS also collect shop events on POST /v1/track",
    )
    serve.add_argument("--port", type=int, default=8726)
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="listen address (default 127.0.0.1; 0.0.0.0 inside a container, behind the TLS "
        "proxy that receives the provider's and the shop's posts)",
    )
    serve.add_argument("--data-dir", type=Path, default=None, help="default: TESSERA_DATA_DIR")
    serve.add_argument(
        "--public-key",
        default=None,
        help="SendGrid's verification key (base64); default env TESSERA_EVENT_WEBHOOK_PUBLIC_KEY",
    )
    serve.set_defaults(func=_run_events)


def _data_dir(value: Path | None) -> Path:
    from tessera.settings import load_settings

    return (value or load_settings().data_dir).resolve()


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def _run_sink(args: argparse.Namespace) -> int:
    from tessera.activations.sink import FaultPlan, running_sink

    data_dir = _data_dir(args.data_dir)
    kinds = tuple(k.strip() for k in args.fault_kinds.split(",") if k.strip())
    plan = FaultPlan.from_dict({"rate": args.fault_rate, "kinds": kinds, "seed": args.seed})
    with running_sink(
        data_dir,
        port=args.port,
        events_url=args.events_url,
        with_events=not args.no_events,
        events_port=args.events_port,
        seed=args.seed,
        faults=plan,
        track=(track := None if args.no_events or args.events_url else _track_route(data_dir)),
    ) as sink:
        log.info("sink listening on %s (records in %s)", sink.url, sink.folder)
        log.info("events go to %s", sink.events_url or "nowhere (--no-events)")
        if track is not None and sink.events_url:
            base = sink.events_url.rsplit("/events", 1)[0]
            log.info("event collector on %s%s (journeys)", base, track.path)
        log.info("event webhook verification key: %s", sink.public_key)
        _wait_for_signal()
    return 0


def _run_events(args: argparse.Namespace) -> int:
    from tessera.activations.errors import ProviderConfigError
    from tessera.activations.events import EventReceiver, running_events
    from tessera.activations.settings import EVENT_KEY_VAR, event_public_key

    key = args.public_key or event_public_key()
    if not key:
        raise ProviderConfigError(
            f"no verification key: pass --public-key or set {EVENT_KEY_VAR} "
            "(SendGrid: Settings > Mail Settings > Signed Event Webhook)"
        )
    data_dir = _data_dir(args.data_dir)
    receiver = EventReceiver(data_dir / "landing", key)
    track = _track_route(data_dir)
    with running_events(receiver, host=args.host, port=args.port, track=track) as url:
        log.info("event endpoint on %s, landing into %s", url, receiver.folder)
        if track is not None:
            sources = ", ".join(sorted(track.receiver.keys))
            log.info(
                "event collector on %s (sources: %s)",
                url.rsplit("/events", 1)[0] + track.path,
                sources,
            )
        _wait_for_signal()
    return 0


def _track_route(data_dir: Path):
    """The journeys' ``POST /v1/track`` collector, when TESSERA_TRACK_KEYS names its sources."""
    import os

    from tessera.activations.events import ExtraRoute
    from tessera.journeys.intake import TRACK_KEYS_VAR, TRACK_PATH, TrackReceiver, parse_track_keys

    keys = parse_track_keys(os.environ.get(TRACK_KEYS_VAR))
    if not keys:
        log.info("no %s: POST %s is not served", TRACK_KEYS_VAR, TRACK_PATH)
        return None
    return ExtraRoute(TRACK_PATH, TrackReceiver(data_dir, keys))
