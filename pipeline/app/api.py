"""The Python API: the command line's backtests and sweeps, from a notebook or a script.

    from pipeline.app.api import backtest, sweep

    result = backtest("allocation=risk_parity", "execution=vwap")   # python run.py allocation=...
    result.metrics["sharpe"], result.equity, result.positions       # DataFrames on a DatetimeIndex
    result = backtest("strategy=buy_and_hold", data=closes)          # your own prices
    html = result.report()                                           # report.html's text
    result.save("runs/rp")                                           # the run folder run.py writes
    table = sweep("strategy.momentum.lookback=63,126,252", "allocation=equal_weight,inverse_vol")

One code path with ``python run.py``: the config is composed by Hydra from the same files
(a checkout's ``conf/`` or the installed ``robo_trader_conf``) with the same overrides and typed
schemas, the same runner builds the stages and walks the backtest, and every frame is a table
of the recorder (``pipeline.results.recorder.tables``) on a tz-aware DatetimeIndex. Nothing is
written unless asked (``Result.save``). A user's own config folder is added as on the command
line: ``backtest("hydra.searchpath=[file:///path/to/conf]", "strategy=mine")``.

Errors: a mistake in the overrides, the config or the data raises the one-line error the
command line prints (without its ``robo-trader: config error:`` prefix) as
``pipeline.core.errors.ConfigError`` or ``DataError``, both ``UserError``; never ``SystemExit``.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from pathlib import Path
from typing import Any, Iterator, Optional

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from pipeline.app import cli, config, runner
from pipeline.backtest.engine import Ledger
from pipeline.core import configs
from pipeline.core.errors import ConfigError, UserError
from pipeline.results import recorder

# the config of the data source a DataFrame is read through (plugins/data/csv.py), and the
# name its messages give the frame ("DataFrame: column 'x' has ...", as "prices.csv: ...")
FRAME_OVERRIDES = ("data=csv", "data.path=DataFrame")


@dataclasses.dataclass
class Result:
    """A finished backtest, in memory. The frames are the run folder's tables (their columns are
    documented in pipeline/results/recorder.py, tca.py and attribution.py):

    - ``equity``: equity, cash and gross exposure per bar; ``returns``: the bar returns
      (from the bar after the first decision); ``weights``: target weights per traded decision;
    - ``positions``: each symbol's holding at the close it is marked at, and ``cash`` (they sum
      to ``equity``; pyfolio's ``positions``); ``shares``: the shares held;
    - ``orders`` (by decision time), ``fills`` (by fill time), ``execution`` (one row per
      parent order by its session: arrival, fills, shortfall, slippage against interval VWAP);
    - ``attribution``, ``sleeves``, ``financing``: per bar, as in the run folder.

    ``metrics`` is metrics.json's content; ``config`` the composed config."""

    config: DictConfig
    metrics: dict[str, Any]
    equity: pd.DataFrame
    returns: pd.DataFrame
    weights: pd.DataFrame
    positions: pd.DataFrame
    shares: pd.DataFrame
    orders: pd.DataFrame
    fills: pd.DataFrame
    execution: pd.DataFrame
    attribution: pd.DataFrame
    sleeves: pd.DataFrame
    financing: pd.DataFrame
    overrides: tuple[str, ...]
    ledger: Ledger = dataclasses.field(repr=False)
    stages: runner.Stages = dataclasses.field(repr=False)

    def report(self) -> str:
        """report.html's text (the tearsheet), built from the same tables as ``save`` writes."""
        return recorder.report_html(self.ledger, self.config, self.stages, list(self.overrides))

    def save(self, folder: str | Path) -> Path:
        """Write the run folder ``python run.py <overrides> out_dir=<folder>`` writes: the same
        files, byte for byte, and Hydra's ``.hydra/config.yaml`` and ``overrides.yaml``."""
        out = Path(folder)
        recorder.record(self.ledger, out, self.config, self.stages, list(self.overrides))
        (out / ".hydra").mkdir(exist_ok=True)
        (out / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(self.config), encoding="utf-8")
        (out / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(list(self.overrides))),
                                                       encoding="utf-8")
        return out

    def pyfolio(self) -> dict[str, pd.DataFrame | pd.Series]:
        """``returns``, ``positions`` and ``transactions`` as pyfolio's ``create_full_tear_sheet``
        takes them (transactions: the fills, amount signed: + bought, - sold)."""
        fills = self.fills
        sign = fills["side"].map({"buy": 1.0, "sell": -1.0})
        transactions = pd.DataFrame({"amount": fills["quantity"] * sign, "price": fills["price"],
                                     "symbol": fills["symbol"]}, index=fills.index)
        return {"returns": self.returns["return"], "positions": self.positions, "transactions": transactions}


def compose(*overrides: str) -> DictConfig:
    """The config ``python run.py <overrides>`` runs (Hydra's compose API, the same schemas)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir, initialize_config_module

    config.register()
    init = (initialize_config_dir(str(configs.conf_dir()), version_base="1.3", job_name="run")
            if configs.in_checkout() else
            initialize_config_module(configs.PACKAGE, version_base="1.3", job_name="run"))
    with _user_errors(), init:
        return hydra_compose("config", overrides=list(overrides))


def backtest(*overrides: str, data: Optional[pd.DataFrame] = None) -> Result:
    """Backtest ``python run.py <overrides>`` in memory and return its :class:`Result`.

    ``overrides``: the command line's ``group=option`` and ``key=value`` strings. ``data``: your
    own prices instead of the config's data source, read as ``data=csv`` reads a file (the same
    checks and messages; set its options with ``data.layout=...``, ``data.tz=...``): wide (a
    DatetimeIndex, one column of closes per symbol), long (a DatetimeIndex or a ``date``
    column, then ``symbol``, ``close`` and optionally ``open``, ``high``, ``low``, ``volume``)
    or one symbol's OHLCV. Raises ConfigError or DataError, the command line's one-line errors.
    """
    overrides = _with_frame(overrides, data)
    cfg = compose(*overrides)
    mode = cfg.get("mode")
    if mode is not None and mode.name != "backtest":
        raise ConfigError(f"mode={mode.name}: the Python API backtests; trade with "
                          f"robo-trader mode={mode.name} ... (or python run.py)")
    if cfg.get("walkforward") is not None:
        raise ConfigError("walkforward: a walk-forward test runs from the command line: "
                          "robo-trader walkforward=<name> (or python run.py)")
    runner.check_objective(cfg)
    with _user_errors():
        stages = runner.build_stages(cfg)
        if data is not None:
            stages.data.frame = data
        ledger = runner.simulate(cfg, stages, cached=data is None)
    frames = recorder.timed(recorder.tables(ledger), ledger.data.index.tz)
    return Result(config=cfg, metrics=recorder.metrics_of(ledger), overrides=tuple(overrides),
                  ledger=ledger, stages=stages, **frames)


def sweep(*overrides: str, data: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """One backtest per combination of the comma-separated values, as ``python run.py -m
    <overrides>`` expands them (Hydra's basic sweeper: ``key=a,b``, ``range(1,4)``,
    ``choice(...)``), in its order; returns one row per job: ``job``, ``overrides``, each swept
    key's value, ``status`` (completed | failed), the metrics (as sweep.csv), ``error`` and the
    job's :class:`Result` in ``result``. A job failing on a user error is a failed row (as in a
    multirun); the grid itself failing to parse raises ConfigError."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    with _user_errors():
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    axes = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override()
            else [o.input_line] for o in parsed]
    rows = []
    for job, combination in enumerate(itertools.product(*axes)):
        row: dict[str, Any] = {"job": job, "overrides": " ".join(combination)}
        for o, line in zip(parsed, combination):
            if o.is_sweep_override():
                row[o.key_or_group] = line.partition("=")[2]
        try:
            result = backtest(*combination, data=data)
        except UserError as exc:
            rows.append({**row, "status": "failed", "error": str(exc), "result": None})
            continue
        row["status"] = "completed"
        row.update({k: v for k, v in result.metrics.items() if not isinstance(v, (dict, list))})
        rows.append({**row, "error": None, "result": result})
    return pd.DataFrame(rows).set_index("job")


def _with_frame(overrides: tuple[str, ...], data: Any) -> tuple[str, ...]:
    if data is None:
        return tuple(overrides)
    if not isinstance(data, pd.DataFrame):
        raise ConfigError(f"data={type(data).__name__}: expected a pandas DataFrame of prices (wide closes, "
                          f"or long OHLCV), or no data= to use the config's data source")
    chosen = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") == "data"]
    if chosen:
        raise ConfigError(f"{chosen[0]} and data=<DataFrame> both choose the data: give one of them")
    return FRAME_OVERRIDES + tuple(overrides)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Raise what the command line prints as one line as one exception, without the chain of
    Hydra's internals behind it; a bug propagates unchanged."""
    try:
        yield
    except Exception as exc:
        error = _user_error(exc)
        if error is exc:
            raise
        raise error from None


def _user_error(exc: BaseException) -> BaseException:
    """The UserError behind ``exc``, or the command line's one line for a Hydra or OmegaConf
    mistake as a ConfigError; ``exc`` itself when it is a bug."""
    seen: Optional[BaseException] = exc
    while seen is not None:
        if isinstance(seen, UserError):
            return seen
        seen = seen.__cause__ or seen.__context__
    message = cli.user_message(exc)
    return exc if message is None else ConfigError(message.partition(": ")[2])
