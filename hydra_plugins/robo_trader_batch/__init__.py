"""Hydra's registration of robo-trader's batched launcher and its sweeper (pipeline/app/batch.py,
pipeline/app/search.py): Hydra instantiates launchers and sweepers only from ``hydra_plugins``.

Hydra imports this module on every run to list its plugins, so the classes here load the
implementation only when Hydra builds them: ``python run.py --help`` stays light.
"""

from typing import Any

from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper


class BatchLauncher(Launcher):
    """``hydra/launcher=batch``: see pipeline/app/batch.py."""

    def __init__(self, **params: Any) -> None:
        from pipeline.app.batch import BatchLauncher as Impl

        self.impl = Impl(**params)

    def setup(self, **kwargs: Any) -> None:
        self.impl.setup(**kwargs)

    def launch(self, job_overrides: Any, initial_job_idx: int) -> Any:
        return self.impl.launch(job_overrides, initial_job_idx)


class BatchSweeper(Sweeper):
    """``hydra/sweeper=batch`` (chosen by hydra/launcher=batch): see pipeline/app/search.py."""

    def __init__(self, **params: Any) -> None:
        from pipeline.app.search import BatchSweeper as Impl

        self.impl = Impl(**params)

    def setup(self, **kwargs: Any) -> None:
        self.impl.setup(**kwargs)

    def sweep(self, arguments: Any) -> Any:
        return self.impl.sweep(arguments)
