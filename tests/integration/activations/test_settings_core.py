"""The send settings are defined in the core; the Dagster resource mirrors them exactly."""

import pytest

from tessera.activations.errors import ProviderConfigError
from tessera.activations.settings import SendSettings, activation_env, send_settings_from_env
from tessera.orchestration.defs.activations.resources import (
    ActivationSettings,
    build_activation_settings,
)


def test_the_resource_has_every_core_field_with_the_same_default():
    core = {name: f.default for name, f in SendSettings.model_fields.items()}
    shell = {name: f.default for name, f in ActivationSettings.model_fields.items()}
    assert shell == core


def test_the_resource_hands_the_core_the_same_values():
    act = ActivationSettings(sink_url="http://127.0.0.1:9", max_daily_sms=5, kill_switch="on")
    assert act.settings() == SendSettings(
        sink_url="http://127.0.0.1:9", max_daily_sms=5, kill_switch=True
    )


def test_secrets_are_named_not_copied_and_stay_out_of_the_repr():
    env = {"SENDGRID_API_KEY": "SG.real-looking.key-value-123", "TESSERA_AUTO_SEND": "yes"}
    values, secrets = activation_env(env)
    assert secrets == {"sendgrid_api_key": "SENDGRID_API_KEY"}
    assert "SG.real-looking.key-value-123" not in repr(values)
    core = send_settings_from_env(env)
    assert core.sendgrid_api_key == env["SENDGRID_API_KEY"] and core.auto_send
    assert "real-looking" not in repr(core)
    assert build_activation_settings(env).auto_send is True


def test_the_core_checks_an_environment_variable_as_the_resource_does():
    with pytest.raises(ProviderConfigError, match="TESSERA_VOLUME_CEILING_FLOOR .* got '5k'"):
        send_settings_from_env({"TESSERA_VOLUME_CEILING_FLOOR": "5k"})
