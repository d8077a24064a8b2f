"""Generic webhook emulation: ``POST /webhook/push``, HMAC-signed."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from tessera.activations.providers import webhook as webhook_signing

if TYPE_CHECKING:
    from email.message import Message

    from tessera.activations.sink.server import SinkServer


class WebhookEndpoints:
    """The generic webhook provider's push endpoint."""

    server: SinkServer
    headers: Message
    _prepared: tuple[object | None, dict]

    def _webhook(self, raw: bytes) -> int:
        secret = self.server.webhook_secret
        if secret and not webhook_signing.verify(
            secret,
            self.headers.get(webhook_signing.TIMESTAMP_HEADER, ""),
            raw,
            self.headers.get(webhook_signing.SIGNATURE_HEADER, ""),
        ):
            self._prepared = ({"error": "bad signature"}, {})
            self.server.state.log_request("/webhook/push", 401, 0, None)
            return 401
        try:
            msgs = json.loads(raw)["messages"]
        except (ValueError, KeyError, TypeError):
            self._prepared = ({"error": 'body must be {"messages": [...]}'}, {})
            return 400
        now = time.time()
        records = [
            {
                "message_key": m.get("message_key", ""),
                "channel": "webhook",
                "provider": "webhook",
                "address": m.get("customer_id", ""),
                "campaign_id": m.get("campaign_id", ""),
                "customer_id": m.get("customer_id", ""),
                "as_of_date": m.get("as_of_date", ""),
                "duration_days": m.get("duration_days", 7),
                "template_id": m.get("template_id"),
                "received_at": now,
            }
            for m in msgs
        ]
        self.server.state.store(records)
        self.server.state.log_request("/webhook/push", 200, len(records), None)
        self.server.emitter.submit(records)
        self._prepared = ({"accepted": len(records)}, {})
        return 200
