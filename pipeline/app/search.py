"""``hydra/sweeper=batch``: the sweeper paired with ``hydra/launcher=batch`` (its config selects it).

- A grid (the basic sweeper's syntax, ``key=a,b,c`` and ``hydra.sweeper.params``): every
  combination, handed to the launcher at once. The basic sweeper composes every job's config
  before launching (0.2 s a job: 40 minutes for 10,000); this one composes each distinct set
  of group choices once to catch a wrong option early, and a bad value fails its job only.
- A search, when ``n_trials`` is set: Optuna asks ``n_jobs`` trials at a time, the launcher
  runs them as one round of batches, and their objectives are told back (failed trials as
  FAIL). Trials go to the same store and statistics as a grid; ``optimization_results.yaml``
  holds the best. Value syntax of ``params``: ``a,b,c`` or ``choice(a,b)`` (categorical),
  ``range(lo, hi, step=s)`` (integers or floats on a step), ``interval(lo, hi)`` (uniform;
  ``tag(log, interval(lo, hi))`` for log-uniform).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf

from pipeline.app.batch import BatchLauncher
from pipeline.core.errors import ConfigError
from pipeline.research import store

log = logging.getLogger("robo_trader")


class BatchSweeper(Sweeper):
    def __init__(self, params: Any = None, n_trials: int | None = None, direction: str = "maximize",
                 sampler: Any = None, study_name: str | None = None, storage: str | None = None,
                 n_jobs: int | None = None) -> None:
        if direction not in ("maximize", "minimize"):
            raise ConfigError(f"hydra.sweeper.direction={direction!r} is not allowed: expected maximize or minimize")
        if n_trials is not None and n_trials < 1:
            raise ConfigError(f"hydra.sweeper.n_trials={n_trials} is not allowed: expected at least 1 trial")
        self.params = dict(params or {})
        self.n_trials, self.direction, self.sampler = n_trials, direction, sampler
        self.study_name, self.storage, self.n_jobs = study_name, storage, n_jobs

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")  # what `rerun` composes from
        parsed = OverridesParser.create(config_loader=self.hydra_context.config_loader).parse_overrides(
            [f"{k}={v}" for k, v in self.params.items()] + list(arguments))
        if self.n_trials is None:
            return self.grid(parsed)
        return self.search(parsed, sweep_dir)

    def grid(self, parsed: list[Override]) -> Any:
        jobs = BasicSweeper.split_arguments(parsed, None)[0]  # the basic sweeper's jobs, in its order
        self.validate(jobs)
        return [self.launcher.launch(jobs, initial_job_idx=0)]

    def validate(self, jobs: Sequence[Sequence[str]]) -> None:
        """Compose each distinct set of group choices once: a wrong option stops the sweep now."""
        loader = self.hydra_context.config_loader
        parser = OverridesParser.create()
        seen = set()
        for overrides in jobs:
            groups = tuple(o.input_line for o in parser.parse_overrides(list(overrides))
                           if loader.repository.group_exists(o.key_or_group))
            if groups not in seen:
                seen.add(groups)
                loader.load_sweep_config(self.config, list(groups))

    def search(self, parsed: list[Override], sweep_dir: Path) -> Any:
        import optuna
        from hydra.utils import instantiate

        if int(optuna.__version__.split(".")[0]) < 3:
            raise ConfigError(f"hydra.sweeper.n_trials: the search needs optuna>=3 (installed: {optuna.__version__}); "
                              f"pip install 'optuna>=4'")
        fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
        space = {o.get_key_element(): distribution(o) for o in parsed if o.is_sweep_override()}
        if not space:
            raise ConfigError("hydra.sweeper.params: nothing to search; give a key a choice, range or interval")
        study = optuna.create_study(study_name=self.study_name, storage=self.storage, direction=self.direction,
                                    sampler=instantiate(self.sampler) if OmegaConf.is_config(self.sampler) else self.sampler,
                                    load_if_exists=True)
        launcher = getattr(self.launcher, "impl", self.launcher)  # behind Hydra's registration shim
        batched = isinstance(launcher, BatchLauncher)
        if batched:
            launcher.keep_at_end = False
        per_round = int(self.n_jobs or (launcher.workers if batched else 1))
        returns, job = [], 0
        while job < self.n_trials:
            trials = [study.ask(space) for _ in range(min(per_round, self.n_trials - job))]
            overrides = [fixed + [f"{key}={trial.params[key]}" for key in space] for trial in trials]
            results = self.launcher.launch(overrides, initial_job_idx=job)
            status = (store.read_table(sweep_dir).set_index("job")["status"] if batched else None)
            for i, (trial, result) in enumerate(zip(trials, results)):
                failed = (status[job + i] != "completed") if batched else result.status.name != "COMPLETED"
                value = None if failed else result.return_value
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(trial, float(value))
            returns.append(results)
            job += len(trials)
        if batched:
            launcher.keep(sweep_dir)
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        best = {"name": "optuna", "best_params": study.best_params if done else None,
                "best_value": float(study.best_value) if done else None}
        OmegaConf.save(OmegaConf.create(best), sweep_dir / "optimization_results.yaml")
        log.info("best of %d trials: %s", len(study.trials), best)
        return returns


def distribution(override: Override) -> Any:
    """The Optuna distribution of a swept override (see the module's docstring)."""
    import optuna.distributions as d

    value = override.value()
    key = override.get_key_element()
    if isinstance(value, ChoiceSweep):
        return d.CategoricalDistribution(list(value.list))
    if isinstance(value, RangeSweep):
        values = list(override.sweep_iterator())
        if not values:
            raise ConfigError(f"{key}={override.get_value_element_as_str()}: the range is empty")
        if all(isinstance(v, int) for v in values):
            return d.IntDistribution(values[0], values[-1], step=int(value.step))
        return d.FloatDistribution(float(values[0]), float(values[-1]), step=float(value.step))
    if isinstance(value, IntervalSweep):
        log_scale = "log" in (value.tags or set())
        if isinstance(value.start, int) and isinstance(value.end, int):
            return d.IntDistribution(value.start, value.end, log=log_scale)
        return d.FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise ConfigError(f"{key}: a search takes a choice, range or interval, got {override.get_value_element_as_str()}")
