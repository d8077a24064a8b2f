"""Small frames shared by the activation unit tests."""

import pytest

from activations.testing import make_messages


@pytest.fixture
def messages_factory():
    return make_messages


@pytest.fixture
def sink(tmp_path):
    from activations.sink import running_sink

    with running_sink(tmp_path / "data", seed=3) as handle:
        yield handle
