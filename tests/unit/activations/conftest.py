"""Small frames shared by the activation unit tests."""

import pytest

from tessera.activations.testing import make_messages


@pytest.fixture
def messages_factory():
    return make_messages
