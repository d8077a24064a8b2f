"""SMS through the official Twilio client; its HTTP client can be pointed at the local sink."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterable, Sequence
from urllib.parse import urlencode

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from tessera.activations.providers import _http
from tessera.activations.providers.base import (
    Message,
    PermanentError,
    Provider,
    TransientError,
    clean_secret,
    parse_retry_after,
    redact,
)

TWILIO_BASE = "https://api.twilio.com"


class _BaseUrlHttpClient(TwilioHttpClient):
    """Twilio's own HTTP client, with the API base URL swapped and response headers kept."""

    def __init__(self, base_url: str | None, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/") if base_url else None
        self.last_headers = threading.local()

    def request(
        self,
        method,
        url,
        params=None,
        data=None,
        headers=None,
        auth=None,
        timeout=None,
        allow_redirects=False,
    ) -> Response:  # noqa: E501
        if self.base_url and url.startswith(TWILIO_BASE):
            url = self.base_url + url[len(TWILIO_BASE) :]
        response = super().request(
            method, url, params, data, headers, auth, timeout, allow_redirects
        )
        self.last_headers.value = dict(response.headers or {})
        return response


class TwilioSmsProvider(Provider):
    """One Messages.json request per SMS (Twilio has no batch send)."""

    name = "twilio"
    max_batch = 1

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        base_url: str | None = None,
        status_callback_url: str | None = None,
        timeout_s: float = 30.0,
        sink_url: str | None = None,
    ) -> None:
        self._sid = clean_secret(account_sid) or ""
        self._token = clean_secret(auth_token) or ""
        basic = base64.b64encode(f"{self._sid}:{self._token}".encode()).decode()
        #: every form of the token (as given, cleaned, inside the basic-auth header)
        self._secrets = [self._token, auth_token, basic]
        self.from_number = from_number
        self.base_url = base_url
        self.status_callback_url = status_callback_url
        self.timeout_s = timeout_s
        self.sink_url = sink_url
        self._local = threading.local()
        _http.install_redaction("twilio.http_client", self._secrets)

    def __repr__(self) -> str:
        return f"TwilioSmsProvider(base_url={self.base_url or TWILIO_BASE!r})"

    def _client(self) -> tuple[Client, _BaseUrlHttpClient]:
        pair = getattr(self._local, "pair", None)
        if pair is None:
            http = _BaseUrlHttpClient(self.base_url, self.timeout_s)
            pair = (Client(self._sid, self._token, http_client=http), http)
            self._local.pair = pair
        return pair

    def send_batch(self, batch: Sequence[Message]) -> dict[str, str | None]:
        client, http = self._client()
        out: dict[str, str | None] = {}
        for m in batch:
            # Twilio has no custom metadata: the status callback URL carries the message key.
            query = urlencode(
                {
                    "message_key": m.key,
                    "campaign_id": m.campaign_id,
                    "customer_id": m.customer_id,
                    "as_of_date": m.as_of_date,
                    "duration_days": m.duration_days,
                }
            )
            callback = f"{self.status_callback_url}?{query}" if self.status_callback_url else None
            kwargs = {"to": m.address, "from_": self.from_number, "body": m.data.get("text", "")}
            if callback:
                kwargs["status_callback"] = callback
            try:
                out[m.key] = client.messages.create(**kwargs).sid
            except TwilioRestException as exc:
                excerpt = redact(f"{exc.code}: {exc.msg}", self._secrets)
                status = int(exc.status)
                if status == 429 or status >= 500:
                    headers = getattr(http.last_headers, "value", {})
                    raise TransientError(
                        f"HTTP {status}", status, excerpt, parse_retry_after(headers, time.time())
                    ) from None
                raise PermanentError(
                    f"HTTP {status}: {excerpt}", status, excerpt, {m.key: excerpt}
                ) from None
            except requests.exceptions.ConnectTimeout:
                raise TransientError("connect timeout") from None
            except requests.exceptions.Timeout:
                raise TransientError(f"timeout after {self.timeout_s}s", ambiguous=True) from None
            except requests.exceptions.ConnectionError as exc:
                refused = "refused" in str(exc).lower()
                raise TransientError("connection error", ambiguous=not refused) from None
        return out

    def reconcile(self, keys: Iterable[str]) -> set[str] | None:
        if not self.sink_url:
            return None
        return _http.sink_received(self.sink_url, keys, _http.settle_seconds(self.timeout_s))

    def flush(self) -> None:
        if self.sink_url:
            _http.sink_flush(self.sink_url)
