"""The sink's HTTP server: routing, fault injection, control endpoints, requests in flight."""

from __future__ import annotations

import json
import logging
import random
import select
import socket
import threading
import time
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tessera.activations.sink.emitter import EventEmitter
from tessera.activations.sink.faults import FaultPlan
from tessera.activations.sink.sendgrid import MAX_BODY_BYTES, SendGridEndpoints
from tessera.activations.sink.state import SinkState
from tessera.activations.sink.twilio import _TWILIO_PATH, TwilioEndpoints
from tessera.activations.sink.webhook import WebhookEndpoints

log = logging.getLogger(__name__)


class SinkServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        port: int,
        state: SinkState,
        emitter: EventEmitter,
        api_key: str | None,
        webhook_secret: str | None,
        faults: FaultPlan,
    ) -> None:
        self.flight = threading.Condition()
        self._tickets = 0
        self.unparsed: dict[int, int] = {}  # connection -> ticket, until its first request
        self.idle: dict[int, socket.socket] = {}  # kept-alive connections between requests
        self.parsed: dict[int, int] = {}  # connection -> requests parsed on it
        self.in_flight: dict[int, int] = {}  # provider request ticket -> connection
        super().__init__(("127.0.0.1", port), _SinkHandler)
        self.state = state
        self.emitter = emitter
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.set_faults(faults)

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that gave up (timeouts, injected drops) are expected: no traceback spam.
        log.debug("sink: client %s went away", client_address)

    # ------------------------------------------------------------- requests in flight
    # Reconciliation must not answer "not received" for a request the sink has accepted but
    # not stored yet. Every connection gets a ticket when it is accepted, and every provider
    # request one when its request line is read; a reconciliation query waits until nothing
    # with an older ticket is still unparsed or being processed.

    def _ticket(self) -> int:
        self._tickets += 1
        return self._tickets

    def process_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        with self.flight:
            self.unparsed[id(request)] = self._ticket()
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:  # type: ignore[no-untyped-def]
        with self.flight:
            self.unparsed.pop(id(request), None)
            self.idle.pop(id(request), None)
            self.parsed.pop(id(request), None)
            self.flight.notify_all()
        super().shutdown_request(request)

    def request_parsed(self, connection: object, provider_request: bool) -> int | None:
        """The connection's request line is read; returns a ticket for a provider request."""
        conn = id(connection)
        with self.flight:
            self.unparsed.pop(conn, None)
            self.idle.pop(conn, None)
            self.parsed[conn] = self.parsed.get(conn, 0) + 1
            ticket = self._ticket()
            if provider_request:
                self.in_flight[ticket] = conn
            self.flight.notify_all()
        return ticket if provider_request else None

    def request_settled(self, ticket: int | None) -> None:
        """A provider request is stored, refused or dropped: reconciliation may answer."""
        if ticket is None:
            return
        with self.flight:
            self.in_flight.pop(ticket, None)
            self.flight.notify_all()

    def connection_idle(self, connection: socket.socket) -> None:
        """A kept-alive connection waits for its next request."""
        with self.flight:
            self.idle[id(connection)] = connection

    def wait_settled(self, timeout: float) -> bool:
        """Block until every request that reached the sink before now is stored or refused.

        Older tickets cover new connections and requests being processed; a kept-alive
        connection with unread bytes holds a request that has arrived but is not parsed yet.
        """
        with self.flight:
            barrier = self._ticket()
            idle = list(self.idle.items())
            seen = {conn: self.parsed.get(conn, 0) for conn, _ in idle}
        readable: set[int] = set()
        if idle:
            try:
                ready, _, _ = select.select([c for _, c in idle], [], [], 0)
            except (OSError, ValueError):  # a connection closed meanwhile
                ready = []
            readable = {id(c) for c in ready}
        with self.flight:
            waiting = {conn: seen[conn] for conn in readable}

            def settled() -> bool:
                if any(t < barrier for t in self.in_flight):
                    return False
                if any(t < barrier for t in self.unparsed.values()):
                    return False
                busy = set(self.in_flight.values())
                return all(
                    conn not in self.parsed  # closed
                    or (self.parsed[conn] > seen and conn not in busy)
                    for conn, seen in waiting.items()
                )

            return self.flight.wait_for(settled, timeout)

    def set_faults(self, plan: FaultPlan) -> None:
        self.faults = plan
        self.fault_rng = random.Random(plan.seed)
        self.fault_count = 0
        self.fault_lock = threading.Lock()

    def next_fault(self) -> str | None:
        with self.fault_lock:
            plan = self.faults
            self.fault_count += 1
            if self.fault_count <= plan.first_n or (
                plan.rate and self.fault_rng.random() < plan.rate
            ):
                return self.fault_rng.choice(plan.kinds) if plan.kinds else None
            return None


class _SinkHandler(SendGridEndpoints, TwilioEndpoints, WebhookEndpoints, BaseHTTPRequestHandler):
    server: SinkServer
    protocol_version = "HTTP/1.1"
    #: The headers and the body of an answer go out as two writes: with Nagle's algorithm the
    #: body waits for the client's delayed ACK (40 ms on Linux) on every kept-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("sink: " + format, *args)

    def handle_one_request(self) -> None:
        super().handle_one_request()
        if not self.close_connection:
            self.server.connection_idle(self.connection)

    def parse_request(self) -> bool:
        ok = super().parse_request()
        path = urlsplit(self.path).path if ok else ""
        provider = self.command == "POST" and not path.startswith("/_sink/")
        self._ticket = self.server.request_parsed(self.connection, ok and provider)
        return ok

    def _reply(self, status: int, body: object | None = None, headers: dict | None = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/_sink/stats":
            self._reply(
                200,
                {
                    **self.server.state.stats(),
                    "events_posted": self.server.emitter.posted_events,
                    "faults": asdict(self.server.faults),
                },
            )
        else:
            self._reply(404, {"errors": [{"message": "not found", "field": None, "help": None}]})

    def do_POST(self) -> None:  # noqa: N802
        try:
            self._post()
        finally:
            self.server.request_settled(self._ticket)

    def _post(self) -> None:
        length = (self.headers.get("Content-Length") or "0").strip()
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            # Unread body: answer and close rather than parse garbage as the next request.
            self.close_connection = True
            self._reply(
                413 if length.isdigit() else 400,
                {
                    "errors": [
                        {"message": "bad or too large Content-Length", "field": None, "help": None}
                    ]
                },
                {"Connection": "close"},
            )
            return None
        raw = self.rfile.read(int(length))
        path = urlsplit(self.path).path
        if path.startswith("/_sink/"):
            return self._control(path, raw)
        fault = self.server.next_fault()
        if fault in ("429", "500", "503"):
            return self._fault_reply(path, fault)
        if fault == "drop":
            self.server.state.log_request(path, 0, 0, "drop")
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if self.server.faults.processing_s > 0:
            time.sleep(self.server.faults.processing_s)
        if path == "/v3/mail/send":
            status = self._mail_send(raw)
        elif path in ("/v3/mail/batch", "/v3/user/scheduled_sends"):
            status = self._scheduled_sends(path, raw)
        elif (m := _TWILIO_PATH.match(path)) is not None:
            status = self._twilio(m.group(1), raw)
        elif path == "/webhook/push":
            status = self._webhook(raw)
        else:
            self._reply(404, {"errors": [{"message": "not found", "field": None, "help": None}]})
            return None
        # Stored (or refused) now; only the answer is still to come.
        self.server.request_settled(self._ticket)
        if fault == "slow":
            # Recorded already; the answer comes after the client gave up (an ambiguous timeout).
            self.server.state.log_request(path, status, 0, "slow")
            time.sleep(self.server.faults.slow_s)
        self._send_prepared(status)
        return None

    def _fault_reply(self, path: str, fault: str) -> None:
        self.server.state.log_request(path, int(fault), 0, fault)
        if fault == "429":
            wait = self.server.faults.retry_after_s
            headers = {
                "Retry-After": f"{wait:g}",
                "X-RateLimit-Limit": 600,
                "X-RateLimit-Remaining": 0,
                "X-RateLimit-Reset": f"{time.time() + wait:.3f}",
            }
            self._reply(
                429,
                {"errors": [{"field": None, "message": "too many requests", "help": None}]},
                headers,
            )
        else:
            self._reply(
                int(fault), {"errors": [{"field": None, "message": "internal error", "help": None}]}
            )

    # Each provider handler stores the messages and prepares the response; the response is
    # sent afterwards so the 'slow' fault can delay it.
    def _send_prepared(self, status: int) -> None:
        body, headers = self._prepared
        self._reply(status, body, headers)

    def _control(self, path: str, raw: bytes) -> None:
        data = json.loads(raw) if raw else {}
        if path == "/_sink/received":
            if not self.server.wait_settled(timeout=float(data.get("wait_s", 60.0))):
                self._reply(503, {"error": "requests still in flight; ask again"})
                return
            counts = self.server.state.key_counts
            with self.server.state.lock:
                got = [k for k in data.get("keys", []) if counts.get(k)]
            self._reply(200, {"received": got})
        elif path == "/_sink/faults":
            try:
                self.server.set_faults(FaultPlan.from_dict(data))
            except (TypeError, ValueError) as exc:
                self._reply(400, {"error": str(exc)})
                return
            self._reply(200, asdict(self.server.faults))
        elif path == "/_sink/flush":
            self.server.emitter.flush()
            self._reply(200, {"events_posted": self.server.emitter.posted_events})
        else:
            self._reply(404, {"error": "not found"})
