"""A strategy that kills the worker process running it, for the batched launcher's tests.

Momentum, except that with ``ROBO_TEST_KILL_LOOKBACK`` set to its lookback its ``signal``
SIGKILLs its own process: always, or only the first time when ``ROBO_TEST_KILL_ONCE`` names
a marker file (created before the kill). Selected with
``strategy.momentum._target_=tests.batch_helpers.KillsItsWorker``.
"""

import os
import signal
from pathlib import Path

from plugins.strategy.momentum import Momentum


class KillsItsWorker(Momentum):
    def signal(self, data, at):
        if os.environ.get("ROBO_TEST_KILL_LOOKBACK") == str(self.lookback):
            once = os.environ.get("ROBO_TEST_KILL_ONCE")
            if not once or not Path(once).exists():
                if once:
                    Path(once).touch()
                os.kill(os.getpid(), signal.SIGKILL)
        return super().signal(data, at)
