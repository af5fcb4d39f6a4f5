"""Behaviour unchanged: every output file of the cases in ``tests.golden.digests`` hashes as recorded."""

import pytest

from tests.golden.digests import CASES, RECORD, differences, digests

pytestmark = pytest.mark.slow


def test_every_output_file_of_the_golden_cases_is_as_recorded():
    import json

    recorded = json.loads(RECORD.read_text())
    assert set(recorded) == set(CASES), "record again: python -m tests.golden.digests --write"
    diff = differences(recorded, digests(list(CASES)))
    assert not diff, ("outputs changed (if deliberate, record again with python -m tests.golden.digests "
                      "--write and say why in the commit):\n" + "\n".join(diff))
