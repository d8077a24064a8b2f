"""The activation resource's volume-ceiling floor comes from the environment, checked."""

import pydantic
import pytest

from tessera.activations.errors import ProviderConfigError
from tessera.orchestration.defs.activations.resources import (
    ActivationSettings,
    build_activation_settings,
)


def test_volume_ceiling_floor_is_read_from_the_environment() -> None:
    assert build_activation_settings({}).volume_ceiling_floor == 50_000
    env = {"TESSERA_VOLUME_CEILING_FLOOR": "200000"}
    assert build_activation_settings(env).volume_ceiling_floor == 200_000


def test_a_volume_ceiling_floor_that_is_not_a_number_names_the_variable() -> None:
    with pytest.raises(ProviderConfigError, match="TESSERA_VOLUME_CEILING_FLOOR .* got '50k'"):
        build_activation_settings({"TESSERA_VOLUME_CEILING_FLOOR": "50k"})


@pytest.mark.parametrize("text", ["-1", "1.5", "ten", " "])
def test_a_negative_or_fractional_ceiling_floor_is_refused(text: str) -> None:
    if not text.strip():
        # Blank means unset, as for every variable.
        assert build_activation_settings({"TESSERA_VOLUME_CEILING_FLOOR": text}) is not None
        return
    with pytest.raises(ProviderConfigError, match=f"TESSERA_VOLUME_CEILING_FLOOR .* got {text!r}"):
        build_activation_settings({"TESSERA_VOLUME_CEILING_FLOOR": text})


@pytest.mark.parametrize(
    "text", ["nan", "NaN", "inf", "-inf", "1e309", "10", "0", "-30", "4321", "soon"]
)
def test_send_ahead_minutes_must_be_a_finite_schedulable_number(text: str) -> None:
    # nan passed every range check and would have failed int(time.time() + nan) mid-send.
    with pytest.raises(ProviderConfigError, match=f"TESSERA_SEND_AHEAD_MINUTES .* got {text!r}"):
        build_activation_settings({"TESSERA_SEND_AHEAD_MINUTES": text})


def test_send_ahead_minutes_in_range_is_taken_and_the_resource_field_is_checked_too() -> None:
    env = {"TESSERA_SEND_AHEAD_MINUTES": "10.5", "TESSERA_IN_FLIGHT_POLICY": "schedule"}
    assert build_activation_settings(env).send_ahead_minutes == 10.5
    assert (
        build_activation_settings({"TESSERA_SEND_AHEAD_MINUTES": "4320"}).send_ahead_minutes == 4320
    )
    with pytest.raises(pydantic.ValidationError, match="TESSERA_SEND_AHEAD_MINUTES=nan"):
        ActivationSettings(send_ahead_minutes=float("nan"))
    with pytest.raises(pydantic.ValidationError, match="volume_ceiling_factor=-1.0"):
        ActivationSettings(volume_ceiling_factor=-1.0)
