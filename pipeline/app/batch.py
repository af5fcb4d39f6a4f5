"""``hydra/launcher=batch``: a multirun's jobs in batches inside long-lived worker processes.

A batch is a list of jobs (number, overrides). A worker composes each distinct combination of
group choices once (Hydra's own loader), applies a job's value overrides to a copy of it (as
Hydra does at the end of a composition), and runs the runner's own backtest
(``runner.simulate``) on data loaded once per process (``runner.load_data``); it records the
job into the sweep store (``pipeline/research/store.py``), never a run folder. The driver
(this launcher) sends the batches to an engine:

- ``local``: a process pool on this machine (``workers`` processes);
- ``dask``: a Dask distributed cluster at ``address`` (none: a LocalCluster of ``workers``);
- ``ray``: a Ray cluster at ``address`` (none: a local Ray of ``workers`` CPUs);
- ``slurm``: submitit job arrays of batches (``submitit.cluster``: slurm, or local to try it).

The store, on a path every worker sees, is the only thing workers share. A batch whose worker
died (or which raised) is retried once, on its own, then its jobs are recorded as failed; with
``sweep.resume=true`` the jobs the store holds are skipped. At the end the best ``sweep.keep``
jobs by the objective get their full run folder, written by Hydra's ``run_job`` exactly as
the basic launcher writes it; ``python -m pipeline.app.batch rerun <sweep> <job>`` writes any
job's folder the same way.
"""

from __future__ import annotations

import concurrent.futures as cf
import copy
import dataclasses
import json
import logging
import math
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus, run_job
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, OmegaConf, open_dict

from pipeline.app import cli, config, runner
from pipeline.core.errors import ConfigError, UserError
from pipeline.core.params import build
from pipeline.report.benchmark import benchmark, benchmark_choice
from pipeline.research import store
from pipeline.research.sweep import LOWER_IS_BETTER
from pipeline.results import recorder
from pipeline.results.metrics import bar_returns

log = logging.getLogger("robo_trader")
ENGINES = ("local", "dask", "ray", "slurm")


@dataclasses.dataclass
class Batch:
    name: str
    jobs: list[tuple[int, list[str]]]
    search_path: Any     # Hydra's config search path: the worker composes as the driver does
    master: DictConfig   # the multirun's config, plain (its schema classes are made at run time)
    sweep_dir: str


# ---------------------------------------------------------------------------------------------
# the worker: pure functions of the batch; caches hold only what is a function of the config
# parts a batch does not change (the composed base of a set of group choices, the calendar file)

_BASES: dict[tuple[str, tuple[str, ...]], DictConfig] = {}
_CALENDARS: dict[int, str] = {}
_BUILT: dict[str, Any] = {}


def make(node: Any, path: str, expected: type | None = None, **extra: Any) -> Any:
    """``params.build``, once per distinct node: each job gets a deep copy of the pristine,
    never-used instance (the same object a fresh build gives; validating a node against its
    schema costs about 25 ms, more than a month-by-month backtest of one strategy)."""
    plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    key = json.dumps([plain, path, getattr(expected, "__name__", None), extra], sort_keys=True, default=repr)
    if key not in _BUILT:
        if len(_BUILT) > 256:  # a sweep over many values keeps the recent ones
            _BUILT.pop(next(iter(_BUILT)))
        _BUILT[key] = build(node, path, expected, **extra)
    return copy.deepcopy(_BUILT[key])


def worker_loader(batch: Batch) -> ConfigLoaderImpl:
    """Hydra's config loader in a worker, composing as the driver does."""
    config.register()
    Plugins.instance()  # registers Hydra's config sources (file://, pkg://) in a fresh worker
    return ConfigLoaderImpl(config_search_path=batch.search_path)


def run_batch(batch: Batch) -> list[dict[str, Any]]:
    """Run every job of the batch, write the batch to the store; returns per job its number,
    status, objective and error (the store holds the rest)."""
    loader = worker_loader(batch)
    master_key = OmegaConf.to_yaml(batch.master)
    rows = []
    for job, overrides in batch.jobs:
        row: dict[str, Any] = {"job": job, "overrides": overrides}
        try:
            row.update(evaluate(compose(loader, batch.master, master_key, overrides), Path(batch.sweep_dir)))
        except Exception as exc:  # a failing job is recorded; the others go on
            row.update(status="failed", error=error_line(exc))
        rows.append(row)
    store.write_batch(Path(batch.sweep_dir), batch.name, rows)
    return [{k: row.get(k) for k in ("job", "status", "objective", "error")} for row in rows]


def compose(loader: Any, master: DictConfig, master_key: str, overrides: list[str]) -> DictConfig:
    """The job's config without its ``hydra`` node: the base of its group choices, composed
    once per worker, with its value overrides applied the way Hydra applies them."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    groups = tuple(o.input_line for o in parsed if loader.repository.group_exists(o.key_or_group))
    values = [o for o in parsed if not loader.repository.group_exists(o.key_or_group)]
    key = (master_key, groups)
    if key not in _BASES:
        if len(_BASES) > 64:  # a worker serving many sweeps keeps the recent ones
            _BASES.pop(next(iter(_BASES)))
        base = loader.load_sweep_config(master, list(groups))
        with open_dict(base):
            del base["hydra"]
        _BASES[key] = base
    cfg = copy.deepcopy(_BASES[key])
    ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
    return cfg


def evaluate(cfg: DictConfig, sweep_dir: Path) -> dict[str, Any]:
    """One job's store row: the metrics and returns a plain run writes to metrics.json and
    returns.csv, from the same ``runner.simulate``."""
    if cfg.objective not in runner.OBJECTIVES:
        raise ConfigError(f"objective={cfg.objective!r} is not a metric; allowed: {', '.join(runner.OBJECTIVES)}")
    if cfg.get("walkforward") is not None or (cfg.get("mode") is not None and cfg.mode.name != "backtest"):
        raise ConfigError("hydra/launcher=batch runs backtests: a walk-forward or a paper/live job needs "
                          "hydra/launcher=basic")
    stages = runner.build_stages(cfg, make)
    ledger = runner.simulate(cfg, stages, progress=False)
    # the run folder's first step: a benchmark the config gets wrong fails the job here too
    bench = benchmark(ledger.data, ledger.start, benchmark_choice(cfg, stages.data))
    metrics = recorder.run_metrics(ledger, bench)
    data = ledger.data
    if id(data) not in _CALENDARS:  # the data are cached per process; so is their calendar
        _CALENDARS.clear()
        _CALENDARS[id(data)] = store.write_calendar(sweep_dir, data.index.tz_convert("UTC"))
    return {"status": "completed", "objective": runner.objective(cfg, metrics),
            "metrics": recorder.to_json(metrics), "calendar": _CALENDARS[id(data)],
            "first": int(ledger.start) + 1, **store.returns_fields(bar_returns(ledger.equity))}


def error_line(exc: BaseException) -> str:
    message = cli.user_message(exc)
    if message is not None and not isinstance(exc, UserError):
        return " ".join(message.split())
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


# ---------------------------------------------------------------------------------------------
# engines: each runs batches and yields (batch, rows or the exception that lost it)

class LocalPool:
    """A process pool kept across a search's rounds (its workers keep their data loaded)."""

    def __init__(self, workers: int) -> None:
        self.workers, self.pool = workers, None

    def run(self, batches: list[Batch], isolated: bool = False) -> Iterator[tuple[Batch, Any]]:
        if isolated:  # a retry runs alone: a second death costs only its own jobs
            for batch in batches:
                with cf.ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
                    yield from self._collect(pool, [batch])
            return
        yield from self._collect(self.pool_or_start(), batches)

    def pool_or_start(self) -> cf.ProcessPoolExecutor:
        if self.pool is None:
            # spawn: the driver holds Hydra's state and maybe threads; a worker starts clean
            self.pool = cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self.pool

    def _collect(self, pool: cf.ProcessPoolExecutor, batches: list[Batch]) -> Iterator[tuple[Batch, Any]]:
        futures = {pool.submit(run_batch, b): b for b in batches}
        broken = False
        for future in cf.as_completed(futures):
            try:
                yield futures[future], future.result()
            except Exception as exc:  # BrokenProcessPool when a worker died: every pending batch
                broken = broken or isinstance(exc, cf.process.BrokenProcessPool)
                yield futures[future], exc
        if broken and pool is self.pool:
            self.close()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


def run_dask(batches: list[Batch], workers: int, address: str | None) -> Iterator[tuple[Batch, Any]]:
    import dask
    from distributed import Client, LocalCluster, as_completed

    # a worker that dies loses its batch at once: our retry, the same for every engine, decides
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = None if address else LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                    host="127.0.0.1", dashboard_address=None)
        client = Client(address or cluster)
        try:
            futures = client.map(run_batch, batches, pure=False)
            owner = {f.key: b for f, b in zip(futures, batches)}
            for future in as_completed(futures):
                try:
                    yield owner[future.key], future.result()
                except Exception as exc:
                    yield owner[future.key], exc
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def run_ray(batches: list[Batch], workers: int, address: str | None) -> Iterator[tuple[Batch, Any]]:
    import ray

    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(max_retries=0)(run_batch)
        refs = {remote.remote(b): b for b in batches}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            try:
                yield refs[done[0]], ray.get(done[0])
            except Exception as exc:
                yield refs[done[0]], exc
    finally:
        if started:
            ray.shutdown()


def run_slurm(batches: list[Batch], sweep_dir: Path, options: dict[str, Any]) -> Iterator[tuple[Batch, Any]]:
    import submitit

    options = dict(options)
    executor = submitit.AutoExecutor(folder=str(sweep_dir / ".submitit" / "%j"), cluster=options.pop("cluster", None))
    executor.update_parameters(**{k: v for k, v in options.items() if v is not None})
    jobs = executor.map_array(run_batch, batches)  # one job array, a batch per task
    for job, batch in zip(jobs, batches):
        try:
            yield batch, job.result()
        except Exception as exc:
            yield batch, exc


# ---------------------------------------------------------------------------------------------
# the driver


class BatchLauncher(Launcher):
    def __init__(self, engine: str = "local", workers: int | None = None, address: str | None = None,
                 batch_size: int | None = None, submitit: Any = None) -> None:
        if engine not in ENGINES:
            raise ConfigError(f"hydra.launcher.engine={engine!r} is not an engine; allowed: {', '.join(ENGINES)}")
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"hydra.launcher.batch_size={batch_size} is not allowed: expected at least 1 job")
        self.engine, self.address, self.batch_size = engine, address, batch_size
        self.workers = int(workers or os.cpu_count() or 1)
        self.submitit = dict(submitit or {})
        self.keep_at_end = True  # a search (pipeline/app/search.py) keeps once, after its last round
        self.local = LocalPool(self.workers)
        self.started = False

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        sweep_dir = Path(self.config.hydra.sweep.dir)
        jobs = [(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
        held = self._held(sweep_dir, jobs)
        todo = [j for j in jobs if j[0] not in held]
        if held:
            log.info("sweep.resume: %d of %d jobs already in the store, %d to run", len(jobs) - len(todo),
                     len(jobs), len(todo))
        self.run(sweep_dir, todo)
        if self.keep_at_end:
            self.keep(sweep_dir)
        table = store.read_table(sweep_dir).set_index("job")
        return [self._job_return(overrides, table.loc[job]) for job, overrides in jobs]

    def _held(self, sweep_dir: Path, jobs: list[tuple[int, list[str]]]) -> dict[int, list[str]]:
        held = store.held_jobs(sweep_dir)
        resume = bool((self.config.get("sweep") or {}).get("resume", False))
        if held and not self.started and not resume:
            raise ConfigError(f"hydra.sweep.dir={sweep_dir} already holds a sweep store of {len(held)} jobs: "
                              f"pass sweep.resume=true to continue it, or choose another hydra.sweep.dir")
        self.started = True
        for job, overrides in jobs:
            if job in held and _what(held[job]) != _what(overrides):
                raise ConfigError(f"sweep.resume: job {job} in the store of {sweep_dir} ran {' '.join(held[job])}, "
                                  f"this sweep's job {job} is {' '.join(overrides)}: resume the same sweep, or "
                                  f"choose another hydra.sweep.dir")
        return held

    def run(self, sweep_dir: Path, jobs: list[tuple[int, list[str]]]) -> dict[int, dict[str, Any]]:
        """Run the jobs in batches on the engine, a lost batch retried once on its own."""
        sweep_dir.mkdir(parents=True, exist_ok=True)
        # about 16 batches a worker: jobs of one group choice cost alike but groups do not (an
        # hrp job costs ten equal_weight ones), so small batches keep both workers busy to the end
        size = self.batch_size or max(1, min(50, math.ceil(len(jobs) / (16 * self.workers))))
        ordered = sorted(jobs, key=lambda j: self._group_key(j[1]))  # a batch shares its compositions
        batches = self._batches(sweep_dir, [(f"batch-{chunk[0][0]:07d}-{len(chunk):04d}", chunk) for chunk in
                                            (ordered[i:i + size] for i in range(0, len(ordered), size))])
        results: dict[int, dict[str, Any]] = {}
        total, done = len(jobs), 0
        for attempt in (0, 1):
            lost = []
            for batch, outcome in self._engine(batches, sweep_dir, isolated=attempt > 0):
                if isinstance(outcome, BaseException):
                    lost.append((batch, outcome))
                    continue
                results.update({row["job"]: row for row in outcome})
                done += len(outcome)
                failed = sum(row["status"] != "completed" for row in outcome)
                print(f"[{done}/{total}] {batch.name}: {len(outcome)} jobs" + (f", {failed} failed" if failed else ""),
                      flush=True)
            for batch, exc in lost:
                log.warning("%s lost (%s)%s", batch.name, error_line(exc), "; retrying it" if not attempt else "")
            batches = [dataclasses.replace(b, name=f"{b.name}-retry") for b, _ in lost]
            if not batches:
                break
        for batch, exc in lost:  # lost twice: its jobs are failed, the sweep goes on
            why = f"the worker running {batch.name} was lost twice: {error_line(exc)}"
            rows = [{"job": job, "overrides": overrides, "status": "failed", "error": why} for job, overrides in batch.jobs]
            store.write_batch(sweep_dir, batch.name, rows)
            results.update({row["job"]: row for row in rows})
            print(f"[{done + len(rows)}/{total}] {batch.name}: {len(rows)} jobs failed ({why})", flush=True)
            done += len(rows)
        return results

    def _batches(self, sweep_dir: Path, chunks: list[tuple[str, list[tuple[int, list[str]]]]]) -> list[Batch]:
        """Named chunks of jobs as batches a worker composes as this driver does."""
        master = OmegaConf.create(OmegaConf.to_container(self.config, resolve=False))
        search_path = self.hydra_context.config_loader.config_search_path
        return [Batch(name, jobs, search_path, master, str(sweep_dir)) for name, jobs in chunks]

    def _group_key(self, overrides: list[str]) -> tuple[str, ...]:
        repo = self.hydra_context.config_loader.repository
        return tuple(o.input_line for o in OverridesParser.create().parse_overrides(overrides)
                     if repo.group_exists(o.key_or_group))

    def _engine(self, batches: list[Batch], sweep_dir: Path, isolated: bool) -> Iterator[tuple[Batch, Any]]:
        if self.engine == "local":
            yield from self.local.run(batches, isolated)
        elif self.engine == "dask":
            yield from run_dask(batches, self.workers, self.address)
        elif self.engine == "ray":
            yield from run_ray(batches, self.workers, self.address)
        else:
            yield from run_slurm(batches, sweep_dir, self.submitit)

    def keep(self, sweep_dir: Path) -> None:
        """The end of a sweep: full run folders for the best ``sweep.keep`` jobs (on the local
        engine by its workers, a job each, else here), ``error.txt`` for failed ones; the
        workers stop."""
        table = store.read_table(sweep_dir)
        n = int((self.config.get("sweep") or {}).get("keep", 10))
        objective = str(self.config.get("objective", "sharpe"))
        done = table[(table["status"] == "completed") & table["objective"].notna()]
        best = done.sort_values("objective", ascending=objective in LOWER_IS_BETTER, kind="stable").head(n)
        todo = [(int(job), list(overrides)) for job, overrides in zip(best["job"], best["overrides"])
                if not (sweep_dir / str(job) / "metrics.json").is_file()]
        if self.engine == "local" and len(todo) > 1:
            kept = self._batches(sweep_dir, [(f"keep-{job}", [(job, overrides)]) for job, overrides in todo])
            futures = [self.local.pool_or_start().submit(keep_batch, b) for b in kept]
            for future in futures:
                future.result()
        else:
            for job, overrides in todo:
                write_job_folder(self.hydra_context, self.task_function, self.config, job, overrides)
        self.local.close()
        for job, error in zip(table["job"], table["error"]):
            if isinstance(error, str):
                folder = sweep_dir / str(job)
                folder.mkdir(exist_ok=True)
                (folder / "error.txt").write_text(error + "\n")

    def _job_return(self, overrides: list[str], row: Any) -> JobReturn:
        ret = JobReturn(overrides=overrides, status=JobStatus.COMPLETED, task_name=str(self.config.hydra.job.name))
        # a failed job returns NaN, as report_user_errors does under the basic sweeper (which
        # stops at an exception); the store says it failed and why
        value = row["objective"] if row["status"] == "completed" else None
        ret.return_value = math.nan if value is None or value != value else float(value)
        return ret


def _what(overrides: list[str]) -> list[str]:
    """A job's overrides but how its sweep stores it (sweep.resume=true is added to resume)."""
    return [o for o in overrides if not o.lstrip("+~").startswith("sweep.")]


def keep_batch(batch: Batch) -> None:
    """In a worker: the batch's jobs' full folders, as the driver writes them (the same
    loader, callbacks and task as ``python run.py -m``)."""
    from hydra._internal.callbacks import Callbacks
    from hydra.types import HydraContext

    context = HydraContext(config_loader=worker_loader(batch), callbacks=Callbacks(batch.master))
    for job, overrides in batch.jobs:
        write_job_folder(context, cli.report_user_errors(cli.task), batch.master, job, overrides)


def write_job_folder(hydra_context: Any, task_function: Any, master: DictConfig, job: int,
                     overrides: list[str]) -> JobReturn:
    """The job's full folder, composed and run as the basic launcher runs a job."""
    cfg = hydra_context.config_loader.load_sweep_config(master, overrides)
    with open_dict(cfg):
        cfg.hydra.job.id = job
        cfg.hydra.job.num = job
    return run_job(hydra_context=hydra_context, task_function=task_function, config=cfg,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


# ---------------------------------------------------------------------------------------------
# python -m pipeline.app.batch rerun <sweep folder> <job>


def rerun(sweep_dir: Path, job: int) -> Path:
    """Rebuild job ``job``'s run folder (``<sweep>/<job>``) from the store: the job's overrides
    run as ``python run.py <overrides> out_dir=<sweep>/<job>`` would."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    held = store.held_jobs(sweep_dir)
    if job not in held:
        raise ConfigError(f"job {job} is not in the store of {sweep_dir} ({len(held)} jobs: 0..{max(held, default=-1)})")
    master = OmegaConf.load(sweep_dir / "multirun.yaml")
    out = sweep_dir / str(job)
    config.register()
    cli.register_resolvers()
    source = next(s for s in master.hydra.runtime.config_sources if s.provider == "main")
    with initialize_config_dir(config_dir=str(source.path).removeprefix("file://"), version_base="1.3"):
        cfg = compose(master.hydra.job.config_name, overrides=held[job], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
            cfg.out_dir = str(out)
        runner.main(cfg)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] != "rerun" or not args[2].isdigit():
        sys.stderr.write("usage: python -m pipeline.app.batch rerun <sweep folder> <job number>\n")
        return 2
    try:
        out = rerun(Path(args[1]), int(args[2]))
    except UserError as exc:
        sys.stderr.write(f"robo-trader: {exc.kind}: {exc}\n")
        return 2
    print(json.dumps({"rerun": str(out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
