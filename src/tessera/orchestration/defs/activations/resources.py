"""The activation resource: providers, sink URL, approval and safety settings.

The environment switch lives in ``build_activation_settings``: secrets become ``dg.EnvVar``
fields only when they are set, live sending needs ``TESSERA_LIVE_SENDS=true`` plus the
provider's credentials, and otherwise every provider targets the local sink.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg
from pydantic import field_validator

from tessera.activations.errors import ProviderConfigError
from tessera.activations.providers.base import Provider, clean_secret
from tessera.activations.providers.file_export import FileExportProvider
from tessera.activations.providers.sendgrid_email import EU_HOST, GLOBAL_HOST, SendGridProvider
from tessera.activations.providers.sendgrid_rules import CANCEL_BEFORE_S, MAX_SEND_AHEAD_S
from tessera.activations.providers.twilio_sms import TwilioSmsProvider
from tessera.activations.providers.webhook import WebhookProvider
from tessera.activations.sender import IN_FLIGHT_POLICIES, RetryPolicy
from tessera.settings import env_bool, load_settings, parse_bool, parse_choice

SENDGRID_REGIONS = ("global", "eu")
DEFAULT_SINK_URL = "http://127.0.0.1:8725"
#: Credentials used against the local sink (which requires an auth header, not a real key).
_SINK_SENDGRID_KEY = "SG.local-sink.not-a-real-key"
_SINK_TWILIO_SID = "AC" + "0" * 32
_SINK_TWILIO_TOKEN = "local-sink-token"
_SINK_WEBHOOK_SECRET = "local-sink-webhook-secret"


_SEND_AHEAD_LOW, _SEND_AHEAD_HIGH = CANCEL_BEFORE_S // 60, MAX_SEND_AHEAD_S // 60
SEND_AHEAD_RULE = (
    f"must be a number of minutes more than {_SEND_AHEAD_LOW} (SendGrid cancels no batch "
    f"later) and at most {_SEND_AHEAD_HIGH} (72 hours)"
)


def schedulable_minutes(minutes: float) -> bool:
    """Whether SendGrid can schedule this far ahead and still cancel after a crash.

    NaN and infinity fail every comparison, so they are refused first: they would reach
    ``int(time.time() + nan)`` in the middle of a send.
    """
    return math.isfinite(minutes) and _SEND_AHEAD_LOW < minutes <= _SEND_AHEAD_HIGH


class ActivationSettings(dg.ConfigurableResource):
    """How Tessera sends: providers and credentials, approval, kill switch, volume ceilings."""

    live: bool = False
    sink_url: str = DEFAULT_SINK_URL
    auto_send: bool = False
    kill_switch: bool = False
    catalog_path: str = ""
    sendgrid_api_key: str | None = None
    sendgrid_host: str = GLOBAL_HOST
    sendgrid_region: Literal["global", "eu"] = "global"
    from_email: str = "news@tessera-shop.example"
    from_name: str = "Tessera Shop"
    sendgrid_sandbox: bool = False
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str = "+15005550006"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    status_callback_url: str | None = None
    volume_ceiling_factor: float = 3.0
    volume_ceiling_floor: int = 50_000
    max_daily_email: int | None = None
    max_daily_sms: int | None = None
    max_daily_webhook: int | None = None
    max_daily_direct_mail: int | None = None
    workers: int = 8
    timeout_s: float = 30.0
    max_attempts: int = 6
    base_delay_s: float = 0.5
    in_flight_policy: Literal["hold", "resend", "schedule"] = "hold"
    #: The timezone of calendar days for the daily ceilings (TESSERA_TIMEZONE).
    timezone: str = "UTC"
    #: With in_flight_policy 'schedule': how far ahead SendGrid requests are scheduled. Every
    #: e-mail leaves this much later; a crashed run can be recovered exactly once until
    #: 10 minutes before that (SendGrid cancels no batch later).
    send_ahead_minutes: float = 20.0
    #: Which ids of the catalog's ``templates`` section are used (TESSERA_ENVIRONMENT).
    environment: str = "default"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"TESSERA_TIMEZONE={value!r} is not an IANA timezone (e.g. UTC, Europe/Berlin)"
            ) from exc
        return value

    @field_validator("send_ahead_minutes")
    @classmethod
    def _schedulable(cls, value: float) -> float:
        if not schedulable_minutes(value):
            raise ValueError(f"TESSERA_SEND_AHEAD_MINUTES={value!r} {SEND_AHEAD_RULE}")
        return value

    @field_validator("volume_ceiling_floor", "volume_ceiling_factor")
    @classmethod
    def _non_negative_ceiling(cls, value: float, info) -> float:  # noqa: ANN001
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{info.field_name}={value!r} must be a number >= 0")
        return value

    @field_validator("live", "auto_send", "kill_switch", "sendgrid_sandbox", mode="before")
    @classmethod
    def _one_boolean_syntax(cls, value: object, info) -> bool:  # noqa: ANN001
        # Pydantic alone would read "y" or "t" as true; every boolean goes through one parser.
        return parse_bool(info.field_name, value)

    @field_validator("in_flight_policy", mode="before")
    @classmethod
    def _exact_policy(cls, value: object) -> str:
        return parse_choice("in_flight_policy", value, IN_FLIGHT_POLICIES)

    @field_validator("sendgrid_region", mode="before")
    @classmethod
    def _known_region(cls, value: object) -> str:
        # Anything but an exact 'eu' used to mean the global host: EU data would leave the EU.
        return parse_choice("sendgrid_region", value, SENDGRID_REGIONS)

    def explicit_ceilings(self) -> dict[str, int]:
        pairs = {
            "email": self.max_daily_email,
            "sms": self.max_daily_sms,
            "webhook": self.max_daily_webhook,
            "direct_mail": self.max_daily_direct_mail,
        }
        return {k: v for k, v in pairs.items() if v is not None}

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.max_attempts, base_delay_s=self.base_delay_s)

    def target_description(self) -> str:
        return "live providers" if self.live else f"local sink at {self.sink_url}"

    def _schedule(self, outbox_dir: Path) -> dict[str, object]:
        """SendGrid's scheduling arguments under in_flight_policy 'schedule' (else none)."""
        if self.in_flight_policy != "schedule":
            return {}
        return {
            "send_ahead_s": self.send_ahead_minutes * 60.0,
            "journal_path": Path(outbox_dir) / "sendgrid_scheduled_batches.jsonl",
        }

    def build_providers(self, outbox_dir: Path) -> Mapping[str, Provider]:
        """Providers by name. Without ``live`` every network provider points at the sink."""
        providers: dict[str, Provider] = {"file": FileExportProvider(outbox_dir)}
        sink = self.sink_url.rstrip("/")
        if not self.live:
            providers["sendgrid"] = SendGridProvider(
                _SINK_SENDGRID_KEY,
                self.from_email,
                self.from_name,
                host=sink,
                timeout_s=self.timeout_s,
                sink_url=sink,
                **self._schedule(outbox_dir),  # type: ignore[arg-type]
            )
            providers["twilio"] = TwilioSmsProvider(
                _SINK_TWILIO_SID,
                _SINK_TWILIO_TOKEN,
                self.twilio_from_number,
                base_url=sink,
                status_callback_url=f"{sink}/status",
                timeout_s=self.timeout_s,
                sink_url=sink,
            )
            providers["webhook"] = WebhookProvider(
                f"{sink}/webhook/push",
                self.webhook_secret or _SINK_WEBHOOK_SECRET,
                timeout_s=self.timeout_s,
                sink_url=sink,
            )
            return providers
        # Secrets are cleaned when a provider loads them (surrounding whitespace and quotes
        # removed, see activations.providers.base.clean_secret); blank means unset.
        if clean_secret(self.sendgrid_api_key):
            host = EU_HOST if self.sendgrid_region == "eu" else self.sendgrid_host
            providers["sendgrid"] = SendGridProvider(
                self.sendgrid_api_key,
                self.from_email,
                self.from_name,
                host=host,
                timeout_s=self.timeout_s,
                sandbox=self.sendgrid_sandbox,
                **self._schedule(outbox_dir),  # type: ignore[arg-type]
            )
        if clean_secret(self.twilio_account_sid) and clean_secret(self.twilio_auth_token):
            providers["twilio"] = TwilioSmsProvider(
                self.twilio_account_sid,
                self.twilio_auth_token,
                self.twilio_from_number,
                status_callback_url=self.status_callback_url,
                timeout_s=self.timeout_s,
            )
        if self.webhook_url and clean_secret(self.webhook_secret):
            providers["webhook"] = WebhookProvider(
                self.webhook_url, self.webhook_secret, self.timeout_s
            )
        return providers

    def require(self, providers: Mapping[str, Provider], needed: set[str]) -> None:
        missing = sorted(needed - set(providers))
        if missing:
            hints = {
                "sendgrid": "SENDGRID_API_KEY",
                "twilio": "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
                "webhook": "TESSERA_WEBHOOK_URL and TESSERA_WEBHOOK_SECRET",
            }
            raise ProviderConfigError(
                "live sending is on but these providers have no credentials: "
                + ", ".join(f"{m} (set {hints.get(m, m)})" for m in missing)
            )


def build_activation_settings(env: Mapping[str, str] | None = None) -> ActivationSettings:
    """The resource from the environment; secrets as ``dg.EnvVar`` so they never show in the UI."""
    env = os.environ if env is None else env
    settings = load_settings(dict(env))
    kwargs: dict[str, object] = {
        "live": env_bool(env, "TESSERA_LIVE_SENDS"),
        "sink_url": env.get("TESSERA_SINK_URL", DEFAULT_SINK_URL),
        "auto_send": env_bool(env, "TESSERA_AUTO_SEND"),
        # An unparseable kill switch raises here, so nothing loads and nothing is sent.
        "kill_switch": env_bool(env, "TESSERA_SENDS_DISABLED"),
        "catalog_path": str(settings.catalog_path),
        "timezone": settings.timezone,
        "sendgrid_region": parse_choice(
            "SENDGRID_REGION", env.get("SENDGRID_REGION", "global"), SENDGRID_REGIONS
        ),
    }
    for field, var in (
        ("sendgrid_api_key", "SENDGRID_API_KEY"),
        ("twilio_account_sid", "TWILIO_ACCOUNT_SID"),
        ("twilio_auth_token", "TWILIO_AUTH_TOKEN"),
        ("webhook_secret", "TESSERA_WEBHOOK_SECRET"),
    ):
        if env.get(var):
            kwargs[field] = dg.EnvVar(var)
    for field, var in (
        ("sendgrid_host", "SENDGRID_HOST"),
        ("from_email", "TESSERA_FROM_EMAIL"),
        ("twilio_from_number", "TWILIO_FROM_NUMBER"),
        ("webhook_url", "TESSERA_WEBHOOK_URL"),
        ("status_callback_url", "TESSERA_STATUS_CALLBACK_URL"),
        ("environment", "TESSERA_ENVIRONMENT"),
    ):
        if env.get(var):
            kwargs[field] = env[var]
    if env.get("TESSERA_IN_FLIGHT_POLICY") is not None:
        kwargs["in_flight_policy"] = parse_choice(
            "TESSERA_IN_FLIGHT_POLICY", env["TESSERA_IN_FLIGHT_POLICY"], IN_FLIGHT_POLICIES
        )
    if env.get("TESSERA_SEND_AHEAD_MINUTES", "").strip():
        text = env["TESSERA_SEND_AHEAD_MINUTES"]
        try:
            minutes = float(text)
        except ValueError:
            minutes = math.nan
        if not schedulable_minutes(minutes):
            raise ProviderConfigError(f"TESSERA_SEND_AHEAD_MINUTES {SEND_AHEAD_RULE}, got {text!r}")
        kwargs["send_ahead_minutes"] = minutes
    # The floor of the daily per-channel ceiling: what a first day (no history yet) may send.
    if env.get("TESSERA_VOLUME_CEILING_FLOOR", "").strip():
        text = env["TESSERA_VOLUME_CEILING_FLOOR"]
        try:
            floor = int(text)
        except ValueError:
            floor = -1
        if floor < 0:
            raise ProviderConfigError(
                f"TESSERA_VOLUME_CEILING_FLOOR must be a whole number of messages (0 or more), "
                f"got {text!r}"
            )
        kwargs["volume_ceiling_floor"] = floor
    return ActivationSettings(**kwargs)
