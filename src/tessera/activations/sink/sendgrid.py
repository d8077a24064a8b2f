"""SendGrid emulation: v3 mail/send validation by SendGrid's documented rules, and endpoints."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import TYPE_CHECKING

import orjson

from tessera.activations.providers.sendgrid_rules import (
    DYNAMIC_TEMPLATE_RE,
    LEGACY_TEMPLATE_RE,
    MAX_BODY_BYTES,
    MAX_CATEGORIES,
    MAX_CATEGORY_CHARS,
    MAX_CUSTOM_ARGS_BYTES,
    MAX_PERSONALIZATIONS,
    MAX_RECIPIENTS,
    MAX_SEND_AHEAD_S,
    RESERVED_HEADERS,
    address_problem,
)

if TYPE_CHECKING:
    from email.message import Message

    from tessera.activations.sink.server import SinkServer

_HELP = "https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors"


def _template_errors(body: dict, err) -> None:  # type: ignore[no-untyped-def]
    template_id = body.get("template_id")
    pers = body.get("personalizations") if isinstance(body.get("personalizations"), list) else []
    has_dynamic_data = any(isinstance(p, dict) and "dynamic_template_data" in p for p in pers)
    if template_id is None:
        if has_dynamic_data:
            err("Cannot use dynamic template data without a template ID.", "template_id")
        return
    if not isinstance(template_id, str) or not (
        DYNAMIC_TEMPLATE_RE.match(template_id) or LEGACY_TEMPLATE_RE.match(template_id)
    ):
        err(
            "The Template ID must be a valid template id for your account. "
            "Dynamic template ids are d- followed by 32 hexadecimal digits.",
            "template_id",
            f"{_HELP}#template_id",
        )
    if has_dynamic_data and not (
        isinstance(template_id, str) and DYNAMIC_TEMPLATE_RE.match(template_id)
    ):
        # Named on the template, not on a personalization: the whole request is wrong.
        err(
            "Cannot use dynamic template data with a legacy template ID",
            "template_id",
            f"{_HELP}#personalizations.dynamic_template_data",
        )


def _custom_args_bytes(*parts: object) -> int:
    merged: dict = {}
    for part in parts:
        if isinstance(part, dict):
            merged.update(part)
    return len(orjson.dumps(merged))


def sendgrid_errors(
    body: object,
    known_batches: set[str] | None = None,
    now: float | None = None,
    raw_size: int = 0,
) -> list[dict]:
    """Validate a v3 mail/send body by SendGrid's documented rules (errors as SendGrid's).

    Covers what a Tessera request can get wrong: sender and recipient address syntax and
    length, template id format and dynamic data, unique categories (at most 10 of at most 255
    characters), custom_args under 10,000 bytes per message, at most 1,000 personalizations and
    1,000 recipients, one address once per request, reserved headers, ``send_at`` at most 72
    hours ahead and ``batch_id`` from ``POST /v3/mail/batch``.
    """
    errs: list[dict] = []
    now = time.time() if now is None else now

    def err(message: str, field_: str | None, help_: str | None = None) -> None:
        errs.append({"message": message, "field": field_, "help": help_})

    if not isinstance(body, dict):
        err("Bad Request", None)
        return errs
    if raw_size > MAX_BODY_BYTES:
        err("The total size of your email must be less than 30MB.", None, f"{_HELP}#message")
    sender = body.get("from")
    if not isinstance(sender, dict) or address_problem(sender.get("email")):
        err(
            "The from email does not contain a valid address.",
            "from.email",
            f"{_HELP}#message.from",
        )
    elif not str(sender.get("email", "")).isascii():
        err("Unicode encoding is not supported for the from field.", "from.email")
    template_id = body.get("template_id")
    if not template_id and not body.get("content"):
        err(
            "Unless a valid template_id is provided, the content parameter is required. There "
            "must be at least one defined content block.",
            "content",
        )
    if not template_id and not body.get("subject"):
        err(
            "The subject is required. You can get around this requirement if you use a template "
            "with a subject defined.",
            "subject",
        )
    _template_errors(body, err)
    categories = body.get("categories")
    if categories is not None:
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            err("The categories parameter must be an array of strings.", "categories")
        else:
            if len(categories) > MAX_CATEGORIES:
                err(
                    f"You may not have more than {MAX_CATEGORIES} categories per request.",
                    "categories",
                )
            if len({c.lower() for c in categories}) != len(categories):
                err("The categories parameter must contain unique values.", "categories")
            for i, c in enumerate(categories):
                if not c or len(c) > MAX_CATEGORY_CHARS:
                    err(
                        f"A category cannot be empty or exceed {MAX_CATEGORY_CHARS} characters.",
                        f"categories.{i}",
                    )
    headers = body.get("headers")
    if headers is not None:
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            err("Invalid type. The headers must be an object of string values.", "headers")
        else:
            for name in headers:
                if str(name).strip().lower() in RESERVED_HEADERS:
                    err(
                        f"The header {name} is reserved and cannot be set in the headers "
                        "parameter.",
                        f"headers.{name}",
                        f"{_HELP}#message.headers",
                    )
    send_at = body.get("send_at")
    if send_at is not None:
        if not isinstance(send_at, int) or isinstance(send_at, bool):
            err("send_at must be a UNIX timestamp (whole seconds).", "send_at")
        elif send_at > now + MAX_SEND_AHEAD_S:
            err("You cannot schedule a send more than 72 hours in advance.", "send_at")
    batch_id = body.get("batch_id")
    if batch_id is not None and (known_batches is None or batch_id not in known_batches):
        err("The batch ID is not valid. Create one with POST /v3/mail/batch.", "batch_id")
    pers = body.get("personalizations")
    if not isinstance(pers, list) or not pers:
        err(
            "The personalizations field is required and must have at least one personalization.",
            "personalizations",
        )
        return errs
    if len(pers) > MAX_PERSONALIZATIONS:
        err(
            f"The personalization block is limited to {MAX_PERSONALIZATIONS} personalizations "
            f"per API request. You have provided {len(pers)} personalizations. Please consider "
            "splitting this into multiple requests and resending your request.",
            "personalizations",
        )
        return errs
    seen: dict[str, str] = {}
    recipients = 0
    for i, p in enumerate(pers):
        if not isinstance(p, dict) or not p.get("to"):
            err(
                "The to array is required for all personalization objects, and must have at "
                "least one email object with a valid email address.",
                f"personalizations.{i}.to",
            )
            continue
        if "substitutions" in p and str(template_id or "").startswith("d-"):
            err(
                "Substitutions may not be used with dynamic templating",
                f"personalizations.{i}.substitutions",
            )
        for kind in ("to", "cc", "bcc"):
            for j, r in enumerate(p.get(kind) or []):
                recipients += 1
                r = r if isinstance(r, dict) else {}
                addr = r.get("email", "")
                where = f"personalizations.{i}.{kind}.{j}.email"
                problem = address_problem(addr)
                if problem:
                    err(problem, where, f"{_HELP}#personalizations.to")
                    continue
                name = r.get("name")
                if isinstance(name, str) and (";" in name or "," in name):
                    err(
                        "The to.name, cc.name, and bcc.name cannot include ; or , characters.",
                        f"personalizations.{i}.{kind}.{j}.name",
                    )
                low = str(addr).lower()
                if low in seen:
                    err(
                        "Each email address in the personalization block should be unique between "
                        f"to, cc, and bcc. We found the first duplicate instance of [{addr}] in "
                        f"the {seen[low]} field.",
                        where,
                    )
                else:
                    seen[low] = f"personalizations.{i}.{kind}"
        args = p.get("custom_args") or {}
        if not isinstance(args, dict) or any(not isinstance(v, str) for v in args.values()):
            err(
                "Invalid type. Expected: string, given: number.",
                f"personalizations.{i}.custom_args",
            )
        elif _custom_args_bytes(body.get("custom_args"), args) >= MAX_CUSTOM_ARGS_BYTES:
            err(
                f"The total length of custom arguments must be less than "
                f"{MAX_CUSTOM_ARGS_BYTES} bytes.",
                f"personalizations.{i}.custom_args",
            )
        p_headers = p.get("headers")
        if isinstance(p_headers, dict):
            for hname in p_headers:
                if str(hname).strip().lower() in RESERVED_HEADERS:
                    err(
                        f"The header {hname} is reserved and cannot be set in the headers "
                        "parameter.",
                        f"personalizations.{i}.headers.{hname}",
                    )
    if recipients > MAX_RECIPIENTS:
        err(
            f"There is a limit of {MAX_RECIPIENTS} total recipients (to + cc + bcc) per request.",
            "personalizations",
        )
    return errs


class SendGridEndpoints:
    """``POST /v3/mail/send``, ``/v3/mail/batch`` and ``/v3/user/scheduled_sends``."""

    server: SinkServer
    headers: Message
    _prepared: tuple[object | None, dict]

    def _sendgrid_auth(self, path: str) -> bool:
        auth = self.headers.get("Authorization", "")
        expected = self.server.api_key
        if (
            not auth.startswith("Bearer ")
            or not auth[7:].strip()
            or (expected and auth[7:] != expected)
        ):
            self._prepared = (
                {
                    "errors": [
                        {
                            "field": None,
                            "message": "The provided authorization grant is invalid, expired, or revoked",
                            "help": None,
                        }
                    ]
                },
                {},
            )
            self.server.state.log_request(path, 401, 0, None)
            return False
        return True

    def _scheduled_sends(self, path: str, raw: bytes) -> int:
        """``POST /v3/mail/batch`` (a new batch id) and ``POST /v3/user/scheduled_sends``."""
        if not self._sendgrid_auth(path):
            return 401
        state = self.server.state
        if path == "/v3/mail/batch":
            batch_id = state.create_batch()
            state.log_request(path, 201, 0, None)
            self._prepared = ({"batch_id": batch_id}, {})
            return 201
        try:
            data = json.loads(raw)
            batch_id, status = data["batch_id"], data["status"]
        except (ValueError, KeyError, TypeError):
            data, batch_id, status = None, None, None
        if not isinstance(batch_id, str) or status not in ("pause", "cancel"):
            problem, field_ = 'the body must be {"batch_id": ..., "status": "pause"|"cancel"}', None
        else:
            problem, field_ = state.set_batch_status(batch_id, status, time.time()), "batch_id"
        if problem:
            self._prepared = ({"errors": [{"field": field_, "message": problem, "help": None}]}, {})
            state.log_request(path, 400, 0, None)
            return 400
        state.log_request(path, 201, 0, None)
        self._prepared = ({"batch_id": batch_id, "status": status}, {})
        return 201

    def _mail_send(self, raw: bytes) -> int:
        if not self._sendgrid_auth("/v3/mail/send"):
            return 401
        try:
            # orjson: the sink parses every request body; it must not be its benchmark's bottleneck.
            body = orjson.loads(raw)
        except ValueError:
            body = None
        errors = sendgrid_errors(body, self.server.state.batch_ids(), raw_size=len(raw))
        if errors:
            self._prepared = ({"errors": errors}, {})
            self.server.state.log_request("/v3/mail/send", 400, 0, None)
            return 400
        now = time.time()
        msg_id = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()[:16]).decode().rstrip("=")
        records = []
        for p in body["personalizations"]:
            args = {**(body.get("custom_args") or {}), **(p.get("custom_args") or {})}
            records.append(
                {
                    "message_key": args.get("message_key", ""),
                    "channel": args.get("channel", "email"),
                    "provider": "sendgrid",
                    "address": p["to"][0]["email"],
                    "campaign_id": args.get("campaign_id", ""),
                    "customer_id": args.get("customer_id", ""),
                    "as_of_date": args.get("as_of_date", ""),
                    "duration_days": args.get("duration_days", "7"),
                    "template_id": body.get("template_id"),
                    "provider_message_id": msg_id,
                    "dynamic_template_data": p.get("dynamic_template_data"),
                    "batch_id": body.get("batch_id"),
                    "send_at": body.get("send_at"),
                    "received_at": now,
                }
            )
        self.server.state.store(records)
        self.server.state.log_request("/v3/mail/send", 202, len(records), None)
        self.server.emitter.submit(records)
        self._prepared = (None, {"X-Message-Id": msg_id})
        return 202
