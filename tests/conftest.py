"""Shared fixtures: the bundled data, loaded once per session."""

import pytest

from plugins.data.sp500 import SP500


@pytest.fixture(scope="session")
def sp500():
    return SP500().load()
