"""How Tessera sends: the typed activation settings, read from the environment in one place.

``activation_env`` is the only reader of the environment for sending: live sending needs
``TESSERA_LIVE_SENDS=true`` plus the provider's credentials, and otherwise every provider
targets the local sink. Secrets are never copied into settings values here: the caller gets
the names of the variables that hold them (the Dagster shell turns them into ``dg.EnvVar``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

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
#: Settings fields that hold secrets -> the environment variable each is read from.
SECRET_VARS = {
    "sendgrid_api_key": "SENDGRID_API_KEY",
    "twilio_account_sid": "TWILIO_ACCOUNT_SID",
    "twilio_auth_token": "TWILIO_AUTH_TOKEN",
    "webhook_secret": "TESSERA_WEBHOOK_SECRET",
}
#: Plain text settings fields -> their environment variable (blank means unset).
_TEXT_VARS = {
    "sendgrid_host": "SENDGRID_HOST",
    "from_email": "TESSERA_FROM_EMAIL",
    "twilio_from_number": "TWILIO_FROM_NUMBER",
    "webhook_url": "TESSERA_WEBHOOK_URL",
    "status_callback_url": "TESSERA_STATUS_CALLBACK_URL",
    "environment": "TESSERA_ENVIRONMENT",
}
EVENT_KEY_VAR = "TESSERA_EVENT_WEBHOOK_PUBLIC_KEY"

_SEND_AHEAD_LOW, _SEND_AHEAD_HIGH = CANCEL_BEFORE_S // 60, MAX_SEND_AHEAD_S // 60
SEND_AHEAD_RULE = (
    f"must be a number of minutes more than {_SEND_AHEAD_LOW} (SendGrid cancels no batch "
    f"later) and at most {_SEND_AHEAD_HIGH} (72 hours)"
)
_BOOLEANS = ("live", "auto_send", "kill_switch", "sendgrid_sandbox")


def schedulable_minutes(minutes: float) -> bool:
    """Whether SendGrid can schedule this far ahead and still cancel after a crash.

    NaN and infinity fail every comparison, so they are refused first: they would reach
    ``int(time.time() + nan)`` in the middle of a send.
    """
    return math.isfinite(minutes) and _SEND_AHEAD_LOW < minutes <= _SEND_AHEAD_HIGH


#: Fields parsed from text before pydantic sees them, and fields checked after typing.
PARSED_FIELDS = (*_BOOLEANS, "in_flight_policy", "sendgrid_region")
CHECKED_FIELDS = ("timezone", "send_ahead_minutes", "volume_ceiling_floor", "volume_ceiling_factor")


def parse_field(name: str, value: object) -> object:
    """One parser per field for the core settings and the Dagster resource alike."""
    if name in _BOOLEANS:
        # Pydantic alone would read "y" or "t" as true; every boolean goes through one parser.
        return parse_bool(name, value)
    if name == "in_flight_policy":
        return parse_choice(name, value, IN_FLIGHT_POLICIES)
    if name == "sendgrid_region":
        # Anything but an exact 'eu' used to mean the global host: EU data would leave the EU.
        return parse_choice(name, value, SENDGRID_REGIONS)
    return value


def check_field(name: str, value: Any) -> Any:
    """Refuse a typed value that cannot work, naming the field (or its variable)."""
    if name == "timezone":
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"TESSERA_TIMEZONE={value!r} is not an IANA timezone (e.g. UTC, Europe/Berlin)"
            ) from exc
    elif name == "send_ahead_minutes" and not schedulable_minutes(value):
        raise ValueError(f"TESSERA_SEND_AHEAD_MINUTES={value!r} {SEND_AHEAD_RULE}")
    elif name in ("volume_ceiling_floor", "volume_ceiling_factor") and (
        not math.isfinite(value) or value < 0
    ):
        raise ValueError(f"{name}={value!r} must be a number >= 0")
    return value


class SendSettings(BaseModel):
    """How Tessera sends: providers and credentials, approval, kill switch, volume ceilings."""

    model_config = ConfigDict(frozen=True)

    live: bool = False
    sink_url: str = DEFAULT_SINK_URL
    auto_send: bool = False
    kill_switch: bool = False
    catalog_path: str = ""
    sendgrid_api_key: str | None = Field(default=None, repr=False)
    sendgrid_host: str = GLOBAL_HOST
    sendgrid_region: Literal["global", "eu"] = "global"
    from_email: str = "news@tessera-shop.example"
    from_name: str = "Tessera Shop"
    sendgrid_sandbox: bool = False
    twilio_account_sid: str | None = Field(default=None, repr=False)
    twilio_auth_token: str | None = Field(default=None, repr=False)
    twilio_from_number: str = "+15005550006"
    webhook_url: str | None = None
    webhook_secret: str | None = Field(default=None, repr=False)
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

    @field_validator(*PARSED_FIELDS, mode="before")
    @classmethod
    def _parsed(cls, value: object, info: ValidationInfo) -> object:
        return parse_field(info.field_name, value)

    @field_validator(*CHECKED_FIELDS)
    @classmethod
    def _checked(cls, value: Any, info: ValidationInfo) -> Any:
        return check_field(info.field_name, value)

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


def activation_env(
    env: Mapping[str, str] | None = None,
) -> tuple[dict[str, object], dict[str, str]]:
    """The activation settings from the environment: (field values, secret field -> variable).

    Every variable is checked here, naming it: an unparseable kill switch raises, so nothing
    loads and nothing is sent. Secret values are not returned, only which variables are set.
    """
    env = os.environ if env is None else env
    settings = load_settings(dict(env))
    values: dict[str, object] = {
        "live": env_bool(env, "TESSERA_LIVE_SENDS"),
        "sink_url": env.get("TESSERA_SINK_URL", DEFAULT_SINK_URL),
        "auto_send": env_bool(env, "TESSERA_AUTO_SEND"),
        "kill_switch": env_bool(env, "TESSERA_SENDS_DISABLED"),
        "catalog_path": str(settings.catalog_path),
        "timezone": settings.timezone,
        "sendgrid_region": parse_choice(
            "SENDGRID_REGION", env.get("SENDGRID_REGION", "global"), SENDGRID_REGIONS
        ),
    }
    secrets = {field: var for field, var in SECRET_VARS.items() if env.get(var)}
    values |= {field: env[var] for field, var in _TEXT_VARS.items() if env.get(var)}
    if env.get("TESSERA_IN_FLIGHT_POLICY") is not None:
        values["in_flight_policy"] = parse_choice(
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
        values["send_ahead_minutes"] = minutes
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
        values["volume_ceiling_floor"] = floor
    return values, secrets


def send_settings_from_env(env: Mapping[str, str] | None = None) -> SendSettings:
    """The core settings from the environment, secrets included (for the core's own callers)."""
    env = os.environ if env is None else env
    values, secrets = activation_env(env)
    return SendSettings(**values, **{field: env[var] for field, var in secrets.items()})


def event_public_key(env: Mapping[str, str] | None = None) -> str | None:
    """The provider's event-webhook verification key (base64), if set."""
    env = os.environ if env is None else env
    return env.get(EVENT_KEY_VAR) or None
