"""``python tests/live/crash_at.py <step>:<n> <run.py arguments>``: run.py whose process kills
itself (SIGKILL, no clean-up) the n-th time a child order passes ``step`` ("after_intent":
journaled, not sent; "after_place": handed to the broker). The crash-safety tests' seam: it is
installed here, in the test's process, never read on the live order path."""

import os
import runpy
import signal
import sys
from pathlib import Path

from pipeline.live.execution import Executor

ROOT = Path(__file__).resolve().parents[2]


def crash_at(spec: str):
    want, _, count = spec.partition(":")
    hits = 0

    def step(name: str) -> None:
        nonlocal hits
        if name == want:
            hits += 1
            if hits >= int(count or 1):
                os.kill(os.getpid(), signal.SIGKILL)

    return step


if __name__ == "__main__":
    Executor.step = staticmethod(crash_at(sys.argv.pop(1)))
    sys.argv[0] = str(ROOT / "run.py")
    runpy.run_path(str(ROOT / "run.py"), run_name="__main__")
