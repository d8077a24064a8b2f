"""A local stand-in for SendGrid and Twilio: validates, records, injects faults, emits events.

Listens on 127.0.0.1 only. Endpoints:
- ``POST /v3/mail/send`` (Bearer auth; SendGrid's documented rules and error shape, see
  :func:`sendgrid_errors`; 202 on success; ``send_at`` + ``batch_id`` schedule a send)
- ``POST /v3/mail/batch`` (a batch id) and ``POST /v3/user/scheduled_sends`` (pause or
  cancel a batch, with SendGrid's limits: not later than 10 minutes before ``send_at``, at
  most 10 batches paused or cancelled at once; a cancelled batch's messages are discarded)
- ``POST /2010-04-01/Accounts/{sid}/Messages.json`` (basic auth; 201 with a message sid)
- ``POST /webhook/push`` (HMAC-signed generic webhook)
- ``POST /_sink/received`` {"keys": [...]} -> keys recorded (reconciliation),
  ``POST /_sink/faults`` (fault plan), ``POST /_sink/flush`` (deliver queued events),
  ``GET /_sink/stats``.
Every received message is appended to ``received.jsonl``; events about it go, signed like
SendGrid's event webhook, to Tessera's event endpoint with timestamps relative to the
message's campaign date (from its custom args), not the wall clock.

Modules: ``sendgrid``, ``twilio`` and ``webhook`` emulate the providers; ``faults`` injects
failures; ``responses`` simulates what recipients do; ``emitter`` posts the resulting events;
``state`` records what was received; ``server`` routes requests; ``runner`` starts it all.
"""

from tessera.activations.providers.sendgrid_rules import (
    CANCEL_BEFORE_S,
    DYNAMIC_TEMPLATE_RE,
    LEGACY_TEMPLATE_RE,
    MAX_BODY_BYTES,
    MAX_CATEGORIES,
    MAX_CATEGORY_CHARS,
    MAX_CUSTOM_ARGS_BYTES,
    MAX_HELD_BATCHES,
    MAX_PERSONALIZATIONS,
    MAX_RECIPIENTS,
    MAX_SEND_AHEAD_S,
    RESERVED_HEADERS,
    address_problem,
)
from tessera.activations.sink.emitter import EventEmitter
from tessera.activations.sink.faults import FAULT_KINDS, FaultPlan
from tessera.activations.sink.responses import EventRates, simulate_events
from tessera.activations.sink.runner import SinkHandle, running_sink
from tessera.activations.sink.sendgrid import sendgrid_errors
from tessera.activations.sink.server import SinkServer
from tessera.activations.sink.state import SinkState

DEFAULT_PORT = 8725

__all__ = [
    "CANCEL_BEFORE_S",
    "DEFAULT_PORT",
    "DYNAMIC_TEMPLATE_RE",
    "FAULT_KINDS",
    "LEGACY_TEMPLATE_RE",
    "MAX_BODY_BYTES",
    "MAX_CATEGORIES",
    "MAX_CATEGORY_CHARS",
    "MAX_CUSTOM_ARGS_BYTES",
    "MAX_HELD_BATCHES",
    "MAX_PERSONALIZATIONS",
    "MAX_RECIPIENTS",
    "MAX_SEND_AHEAD_S",
    "RESERVED_HEADERS",
    "EventEmitter",
    "EventRates",
    "FaultPlan",
    "SinkHandle",
    "SinkServer",
    "SinkState",
    "address_problem",
    "running_sink",
    "sendgrid_errors",
    "simulate_events",
]
