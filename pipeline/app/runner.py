"""``run(cfg)``: build every stage from the composed config, backtest, record.

Every component is validated and built before any data is read, so a config mistake costs
nothing and names its key.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, Callable, Optional

from omegaconf import DictConfig, OmegaConf

from pipeline.app import events, registry
from pipeline.backtest.engine import Ledger, backtest
from pipeline.backtest.exits import check_sleeves
from pipeline.core.contracts import (Allocator, Broker, Constraint, DataSource, ExecutionAlgo,
                                ExitRule, Strategy)
from pipeline.core.errors import ConfigError, UserError
from pipeline.core.lob import EventSource
from pipeline.core.params import build
from pipeline.core.schedule import decision_bars
from pipeline.decision.targets import Capped
from pipeline.report import console
from pipeline.report import sections as report_sections
from pipeline.research import walkforward as wf
from pipeline.results import recorder


log = logging.getLogger("robo_trader")


@dataclasses.dataclass
class Stages:
    data: DataSource
    strategies: dict[str, Strategy]
    allocator: Allocator
    portfolio: Allocator | None
    constraints: list[tuple[str, Constraint]]
    algo: ExecutionAlgo
    broker: Broker
    exits: dict[str, ExitRule] = dataclasses.field(default_factory=dict)  # name -> rule; {}: none


def build_stages(cfg: DictConfig, make: Callable[..., Any] = build) -> Stages:
    """Every stage of the run; ``make`` builds a component (``params.build``, or a batched
    sweep's cache of pristine instances, pipeline/app/batch.py)."""
    seed = int(cfg.seed)
    if not cfg.capital > 0:
        raise ConfigError(f"capital={cfg.capital} is not allowed: expected a positive amount")
    strategies = cfg.strategy
    if not isinstance(strategies, DictConfig) or not strategies:
        raise ConfigError("strategy: expected one or more strategies keyed by name "
                          "(strategy=momentum or strategy=[momentum,buy_and_hold])")
    portfolio = cfg.get("portfolio")
    if len(strategies) > 1 and portfolio is None:
        raise ConfigError(f"strategy: {len(strategies)} sleeves ({', '.join(strategies)}) need "
                          f"portfolio=<allocation> to weigh them, e.g. portfolio=equal_weight")
    report_sections.chosen((cfg.get("report") or {}).get("sections"))  # a misspelt section fails now, not after the run
    exits = build_exits(cfg.get("exits"), list(strategies), seed)
    recorder.formats(cfg)  # and a misspelt record.format
    return Stages(
        data=make(cfg.data, "data", DataSource, seed=seed),
        strategies={name: make(node, f"strategy.{name}", Strategy, seed=seed)
                    for name, node in strategies.items()},
        allocator=make(cfg.allocation, "allocation", Allocator, seed=seed),
        portfolio=None if portfolio is None else _capped(make(portfolio, "portfolio", Allocator, seed=seed),
                                                         cfg.get("sleeve_caps")),
        constraints=build_risk(cfg.risk, make),
        algo=make(cfg.execution, "execution", ExecutionAlgo, seed=seed),
        broker=make(cfg.broker, "broker", Broker, seed=seed),
        exits=exits,
    )


def build_exits(node: Any, sleeves: list[str], seed: int) -> dict[str, ExitRule]:
    """The exit rules keyed by name (``exits=[stop_loss,take_profit]``), checked against the
    sleeves that run, before any data is read."""
    if not node:
        return {}
    if not isinstance(node, DictConfig):
        raise ConfigError(f"exits={node!r}: expected exit rules keyed by name "
                          f"(exits=stop_loss or exits=[stop_loss,take_profit])")
    rules = {name: build(rule, f"exits.{name}", ExitRule, seed=seed) for name, rule in node.items()
             if rule is not None}
    check_sleeves(rules, sleeves)
    return rules


def _capped(portfolio: Allocator, caps: Any) -> Allocator:
    if not caps:
        return portfolio
    for name, limit in caps.items():
        if not isinstance(limit, (int, float)) or not 0 < limit <= 1:
            raise ConfigError(f"sleeve_caps.{name}={limit!r} is not allowed: expected a weight in (0, 1]")
    return Capped(portfolio, dict(caps))


def build_risk(node: Any, make: Callable[..., Any] = build) -> list[tuple[str, Constraint]]:
    """Active constraints (non-null entries) in their declared order (``Constraint.order``)."""
    built = []
    for name, value in (node or {}).items():
        if value is None:
            continue
        cls = registry.load("risk", name)
        path = f"risk.{name}"
        shorthand = not (OmegaConf.is_dict(value) or isinstance(value, dict))
        if not shorthand:
            params = OmegaConf.to_container(value) if OmegaConf.is_config(value) else dict(value)
        elif cls.primary is not None:
            params = {cls.primary: value}
        else:
            raise ConfigError(f"{path}={value!r}: this constraint takes a mapping of "
                              f"{', '.join(cls.param_names())}")
        target = f"{cls.__module__}.{cls.__qualname__}"
        try:
            built.append((name, make({"_target_": target, **params}, path, Constraint)))
        except ConfigError as exc:
            if not shorthand:
                raise
            # name the key the user wrote (risk.max_weight), not the hidden parameter
            raise ConfigError(str(exc).replace(f"{path}.{cls.primary}=", f"{path}=")) from None
    built.sort(key=lambda item: type(item[1]).order)
    for _, constraint in built:  # constraints that can only be judged as a set say so now
        check = getattr(constraint, "check_with", None)
        if check is not None:
            check(built)
    return built


def output_dir(cfg: DictConfig) -> Path:
    if cfg.get("out_dir"):
        return Path(cfg.out_dir)
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path.cwd()


# One process may run many jobs (a sweep's basic launcher, a joblib worker): data loaded once
# per process and identical config is reused. MarketData is frozen and stages only read it.
_DATA_CACHE: dict[str, Any] = {}


def load_data(source: DataSource, node: Any) -> Any:
    key = OmegaConf.to_yaml(node, resolve=True) if OmegaConf.is_config(node) else repr(node)
    path = getattr(source, "path", None)
    if path and Path(str(path)).is_file():  # a user's file may change between jobs
        stat = Path(str(path)).stat()
        key += f"|{stat.st_mtime_ns}|{stat.st_size}"
    if key in _DATA_CACHE:
        log.info("data: reused %s already loaded in this process", type(source).__name__)
    else:
        _DATA_CACHE.clear()  # keep one market in memory, not one per variant ever seen
        _DATA_CACHE[key] = source.load()
        log.info("data: loaded %s", type(source).__name__)
    return _DATA_CACHE[key]


def objective(cfg: DictConfig, metrics: dict[str, Any]) -> float:
    """The number a sweeper optimises: ``metrics[cfg.objective]`` (NaN when undefined)."""
    value = metrics.get(cfg.objective)
    return float("nan") if value is None else float(value)


def check_objective(cfg: DictConfig) -> None:
    if cfg.objective not in OBJECTIVES:
        raise ConfigError(f"objective={cfg.objective!r} is not a metric; allowed: {', '.join(OBJECTIVES)}")


def main(cfg: DictConfig) -> float:
    """The Hydra task: run, then hand the objective to the sweeper (Optuna maximises it)."""
    check_objective(cfg)
    mode = cfg.get("mode")
    if mode is not None and mode.name != "backtest":
        from pipeline.live.runner import run_live  # a backtest never loads live trading (0.16 s)

        run_live(cfg, output_dir(cfg), build_stages)
        return float("nan")
    if cfg.get("walkforward") is not None:
        summary = run_walkforward(cfg)
        return objective(cfg, summary["out_of_sample"])
    return objective(cfg, run(cfg))


def run_walkforward(cfg: DictConfig) -> dict[str, Any]:
    """Backtest every candidate of ``cfg.walkforward.grid`` once; choose per fold; record."""
    import numpy as np

    out = output_dir(cfg)
    try:
        spec = wf.parse(cfg.walkforward, cfg, OBJECTIVES)
        grid = wf.candidates(spec["grid"])
        plain = OmegaConf.to_container(cfg, resolve=True)
        plain.pop("walkforward")
        columns, starts, data = [], [], None
        for params in grid:
            variant = OmegaConf.create(plain)
            for key, value in params.items():
                OmegaConf.update(variant, key, value, merge=False)
            stages = build_stages(variant)
            data = load_data(stages.data, variant.data)
            ledger = backtest(data, stages.strategies, stages.allocator, stages.constraints, stages.algo,
                              stages.broker, decision_bars(data.index, variant.schedule.rebalance,
                                                           sessions=data.intraday_sessions),
                              float(variant.capital), drift=variant.schedule.drift,
                              portfolio=stages.portfolio, exits=stages.exits)
            r = np.zeros(data.n_bars)
            r[ledger.start + 1:] = ledger.equity[1:] / ledger.equity[:-1] - 1.0
            columns.append(r)
            starts.append(ledger.start)
        returns = np.column_stack(columns)
        result = wf.evaluate(returns, data.index, spec, first=min(starts))
        summary = wf.write(out, result, grid, returns, data.index, spec)
    except UserError as exc:
        recorder.record_failure(out, exc)
        raise
    oos, hind = summary["out_of_sample"], summary["in_sample_best_over_whole_history"]
    print(f"walk-forward over {summary['folds']} folds, {summary['candidates']} candidates, by {spec['metric']}:\n"
          f"  out of sample (stitched): sharpe {oos['sharpe']:.2f}  cagr {oos['cagr']:.2%}\n"
          f"  best with hindsight {hind['params']}: sharpe {hind['same_period']['sharpe']:.2f} "
          f"over the same period\n  output {out}")
    return summary


OBJECTIVES = ("sharpe", "sortino", "calmar", "cagr", "total_return", "max_drawdown", "annual_vol",
              "turnover", "total_costs", "final_equity")


def simulate(cfg: DictConfig, stages: Stages, cached: bool = True,
             progress: Optional[bool] = None) -> Ledger:
    """Check the run's own settings, load the data and walk the backtest: the ledger that
    ``run`` records, the Python API returns and a batched sweep's job stores
    (pipeline/app/batch.py). ``cached=False``: load the data afresh (a DataFrame given to the
    API has no config that identifies it); ``progress`` None: as ``cfg.progress`` says."""
    if getattr(stages.broker, "live_only", False):
        raise ConfigError(f"{type(stages.broker).__name__} trades through a gateway: run it with "
                          f"mode=paper (or mode=live); backtest with broker=sim")
    drift = cfg.schedule.drift
    if drift is not None and not 0 < drift < 2:
        raise ConfigError(f"schedule.drift={drift} is not allowed: expected a weight "
                          f"difference in (0, 2), or null to trade at every decision")
    data = load_data(stages.data, cfg.data) if cached else stages.data.load()
    decisions = decision_bars(data.index, cfg.schedule.rebalance, sessions=data.intraday_sessions)
    bar = console.Progress("backtest", enabled=bool(cfg.progress if progress is None else progress))
    ledger = backtest(data, stages.strategies, stages.allocator, stages.constraints, stages.algo,
                      stages.broker, decisions, float(cfg.capital), drift=drift,
                      progress=bar.update, portfolio=stages.portfolio, exits=stages.exits)
    bar.close()
    return ledger


def run(cfg: DictConfig) -> dict[str, Any]:
    """Backtest the configured pipeline and write the run folder; returns the metrics."""
    out = output_dir(cfg)
    try:
        stages = build_stages(cfg)
        events.check(stages)
        if isinstance(stages.data, EventSource):
            return events.run_events(cfg, stages, out)
        started = time.perf_counter()
        ledger = simulate(cfg, stages)
        elapsed = time.perf_counter() - started
        metrics = recorder.record(ledger, out, cfg, stages)
    except UserError as exc:
        recorder.record_failure(out, exc)
        raise
    console.summary(metrics, cfg, stages, out, elapsed)
    return metrics
