"""The activation resource: the Dagster face of the core's send settings.

Fields, parsing and validation are the core's (``tessera.activations.settings``); this wrapper
adds only what Dagster needs: secrets as ``dg.EnvVar`` (never shown in the UI) and the
``resources`` definitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import dagster as dg
from pydantic import ValidationInfo, field_validator

from tessera.activations.providers.base import Provider
from tessera.activations.providers.sendgrid_email import GLOBAL_HOST
from tessera.activations.settings import (
    CHECKED_FIELDS,
    DEFAULT_SINK_URL,
    PARSED_FIELDS,
    SendSettings,
    activation_env,
    check_field,
    parse_field,
)


class ActivationSettings(dg.ConfigurableResource):
    """How Tessera sends: providers and credentials, approval, kill switch, volume ceilings.

    The fields mirror ``tessera.activations.settings.SendSettings`` (see there for each one);
    ``settings()`` is the core object the activation steps take.
    """

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
    timezone: str = "UTC"
    send_ahead_minutes: float = 20.0
    environment: str = "default"

    @field_validator(*PARSED_FIELDS, mode="before")
    @classmethod
    def _parsed(cls, value: object, info: ValidationInfo) -> object:
        return parse_field(info.field_name, value)

    @field_validator(*CHECKED_FIELDS)
    @classmethod
    def _checked(cls, value: Any, info: ValidationInfo) -> Any:
        return check_field(info.field_name, value)

    def settings(self) -> SendSettings:
        """The core settings (secrets resolved from their environment variables by Dagster)."""
        return SendSettings(**{name: getattr(self, name) for name in SendSettings.model_fields})

    def target_description(self) -> str:
        return self.settings().target_description()

    def build_providers(self, outbox_dir: Path) -> Mapping[str, Provider]:
        return self.settings().build_providers(outbox_dir)


def build_activation_settings(env: Mapping[str, str] | None = None) -> ActivationSettings:
    """The resource from the environment; secrets as ``dg.EnvVar`` so they never show in the UI."""
    values, secrets = activation_env(env)
    return ActivationSettings(
        **values,  # type: ignore[arg-type]
        **{field: dg.EnvVar(var) for field, var in secrets.items()},
    )
