"""Shared fixtures: the bundled data, loaded once per session."""

import pytest
from hypothesis import settings

from plugins.data.sp500 import SP500


@pytest.fixture(scope="session")
def sp500():
    return SP500().load()


# Property tests draw from a fixed sequence so CI is reproducible: the same examples every run.
settings.register_profile("repeatable", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("repeatable")
