"""Every boolean and enum a user sets for sending is parsed in one place and refused when unknown."""

import duckdb
import pydantic
import pytest

from tessera.activations.errors import SendBlockedError
from tessera.activations.sender import send_messages
from tessera.orchestration.defs.activations.resources import (
    ActivationSettings,
    build_activation_settings,
)
from tessera.settings import SettingsError, parse_bool


@pytest.mark.parametrize(
    "text", ["true", "TRUE", " True ", "1", "yes", "YES", "on", " On\n"], ids=repr
)
def test_accepted_true_spellings_turn_the_kill_switch_on(text):
    assert build_activation_settings({"TESSERA_SENDS_DISABLED": text}).kill_switch is True


@pytest.mark.parametrize("text", ["false", "FALSE", "0", "no", " off ", ""], ids=repr)
def test_accepted_false_spellings_and_empty_leave_it_off(text):
    assert build_activation_settings({"TESSERA_SENDS_DISABLED": text}).kill_switch is False


@pytest.mark.parametrize(
    "var", ["TESSERA_SENDS_DISABLED", "TESSERA_AUTO_SEND", "TESSERA_LIVE_SENDS"]
)
@pytest.mark.parametrize("text", ["y", "t", "enabled", "2", "nope"])
def test_an_unknown_boolean_is_an_error_naming_the_variable_and_the_allowed_values(var, text):
    # For the kill switch this fails safe: no resource, so no run can send.
    with pytest.raises(SettingsError, match=rf"{var}='{text}' is not a boolean; use one of true"):
        build_activation_settings({var: text})


def test_resource_fields_use_the_same_boolean_parser():
    with pytest.raises(pydantic.ValidationError, match="kill_switch='y' is not a boolean"):
        ActivationSettings(kill_switch="y")
    assert ActivationSettings(kill_switch="ON").kill_switch is True
    assert parse_bool("X", None, default=True) is True


@pytest.mark.parametrize("text", ["Hold", "HOLD", "hold ", "resend\n", "retry"])
def test_in_flight_policy_must_be_written_exactly(text):
    with pytest.raises(
        SettingsError,
        match="TESSERA_IN_FLIGHT_POLICY=.* not allowed; use exactly one of hold, resend",
    ):
        build_activation_settings({"TESSERA_IN_FLIGHT_POLICY": text})
    with pytest.raises(pydantic.ValidationError, match="in_flight_policy=.* not allowed"):
        ActivationSettings(in_flight_policy=text)


def test_in_flight_policy_from_the_environment():
    assert build_activation_settings({}).in_flight_policy == "hold"
    env = {"TESSERA_IN_FLIGHT_POLICY": "resend"}
    assert build_activation_settings(env).in_flight_policy == "resend"


def test_the_send_loop_refuses_an_unknown_policy_before_touching_the_ledger(messages_factory):
    con = duckdb.connect()
    with pytest.raises(SendBlockedError, match="in_flight_policy='Hold' is not allowed"):
        send_messages(con, messages_factory(3), {}, in_flight_policy="Hold")
    tables = con.execute("select count(*) from information_schema.tables").fetchall()[0][0]
    assert tables == 0


@pytest.mark.parametrize("text", ["EU", "eu ", "europe"])
def test_sendgrid_region_must_be_global_or_eu(text):
    with pytest.raises(SettingsError, match="SENDGRID_REGION=.* use exactly one of global, eu"):
        build_activation_settings({"SENDGRID_REGION": text})
    assert build_activation_settings({"SENDGRID_REGION": "eu"}).sendgrid_region == "eu"


def test_an_unknown_timezone_is_refused_when_the_resource_is_built():
    with pytest.raises(SettingsError, match="TESSERA_TIMEZONE='Mars/Olympus' is not an IANA"):
        build_activation_settings({"TESSERA_TIMEZONE": "Mars/Olympus"})
    with pytest.raises(pydantic.ValidationError, match="TESSERA_TIMEZONE='Mars/Olympus'"):
        ActivationSettings(timezone="Mars/Olympus")
    assert (
        build_activation_settings({"TESSERA_TIMEZONE": "Europe/Berlin"}).timezone == "Europe/Berlin"
    )


def test_whole_number_and_timezone_settings_name_the_variable():
    from tessera.settings import load_settings

    with pytest.raises(SettingsError, match="TESSERA_DEMO_CUSTOMERS='20k' is not a whole number"):
        load_settings({"TESSERA_DEMO_CUSTOMERS": "20k"})
    with pytest.raises(SettingsError, match="TESSERA_TIMEZONE='Europe/Berlinn'"):
        load_settings({"TESSERA_TIMEZONE": "Europe/Berlinn"})
    assert load_settings({"TESSERA_DEMO_SEED": " 7 "}).demo_seed == 7
