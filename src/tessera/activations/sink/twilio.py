"""Twilio emulation: ``POST /2010-04-01/Accounts/{sid}/Messages.json`` (basic auth, 201)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from email.message import Message

    from tessera.activations.sink.server import SinkServer

_E164_RE = re.compile(r"^\+?[0-9]{7,15}$")
_TWILIO_PATH = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")


class TwilioEndpoints:
    """Twilio's Messages resource."""

    server: SinkServer
    headers: Message
    _prepared: tuple[object | None, dict]

    def _twilio(self, sid: str, raw: bytes) -> int:
        auth = self.headers.get("Authorization", "")
        user = ""
        if auth.startswith("Basic "):
            try:
                user, _, token = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                user, token = "", ""
        if not user or user != sid or not token:
            self._prepared = (
                {
                    "code": 20003,
                    "message": "Authenticate",
                    "more_info": "https://www.twilio.com/docs/errors/20003",
                    "status": 401,
                },
                {},
            )
            self.server.state.log_request("twilio", 401, 0, None)
            return 401
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        to, body = form.get("To", ""), form.get("Body", "")
        problem = None
        if not to:
            problem = (21604, "A 'To' phone number is required.")
        elif not _E164_RE.match(to):
            problem = (21211, f"The 'To' number {to} is not a valid phone number.")
        elif not (form.get("From") or form.get("MessagingServiceSid")):
            problem = (21603, "A 'From' phone number is required.")
        elif not body:
            problem = (21602, "Message body is required.")
        if problem:
            self._prepared = (
                {
                    "code": problem[0],
                    "message": problem[1],
                    "more_info": f"https://www.twilio.com/docs/errors/{problem[0]}",
                    "status": 400,
                },
                {},
            )
            self.server.state.log_request("twilio", 400, 0, None)
            return 400
        callback = parse_qs(urlsplit(form.get("StatusCallback", "")).query)
        arg = {k: v[0] for k, v in callback.items()}
        msg_sid = "SM" + hashlib.sha256(raw + str(time.time_ns()).encode()).hexdigest()[:32]
        record = {
            "message_key": arg.get("message_key", ""),
            "channel": "sms",
            "provider": "twilio",
            "address": to,
            "campaign_id": arg.get("campaign_id", ""),
            "customer_id": arg.get("customer_id", ""),
            "as_of_date": arg.get("as_of_date", ""),
            "duration_days": arg.get("duration_days", "7"),
            "template_id": None,
            "provider_message_id": msg_sid,
            "body": body,
            "received_at": time.time(),
        }
        self.server.state.store([record])
        self.server.state.log_request("twilio", 201, 1, None)
        self.server.emitter.submit([record])
        now = dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
        self._prepared = (
            {
                "sid": msg_sid,
                "account_sid": sid,
                "to": to,
                "from": form.get("From"),
                "body": body,
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "date_created": now,
                "date_updated": now,
                "date_sent": None,
                "error_code": None,
                "error_message": None,
                "price": None,
                "price_unit": "USD",
                "uri": f"/2010-04-01/Accounts/{sid}/Messages/{msg_sid}.json",
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "num_media": "0",
                "subresource_uris": {},
            },
            {},
        )
        return 201
