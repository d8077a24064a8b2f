"""The activation resource's volume-ceiling floor comes from the environment, checked."""

import pytest

from tessera.activations.errors import ProviderConfigError
from tessera.orchestration.defs.activations.resources import build_activation_settings


def test_volume_ceiling_floor_is_read_from_the_environment() -> None:
    assert build_activation_settings({}).volume_ceiling_floor == 50_000
    env = {"TESSERA_VOLUME_CEILING_FLOOR": "200000"}
    assert build_activation_settings(env).volume_ceiling_floor == 200_000


def test_a_volume_ceiling_floor_that_is_not_a_number_names_the_variable() -> None:
    with pytest.raises(ProviderConfigError, match="TESSERA_VOLUME_CEILING_FLOOR .* got '50k'"):
        build_activation_settings({"TESSERA_VOLUME_CEILING_FLOOR": "50k"})
