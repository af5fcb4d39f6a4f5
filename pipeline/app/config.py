"""Typed schemas in Hydra's ConfigStore, registered before composition.

- ``robo_config``: the run's top level (``conf/config.yaml`` extends it), so a misspelt
  top-level key or a value of the wrong type fails at composition.
- ``risk``: one optional field per registered constraint, so ``risk.max_wieght=0.2`` fails
  at composition; the value is the constraint's primary parameter or a mapping of them.
- ``schema/<stage>/<name>``: each registered plugin's schema, generated from its
  ``__init__`` signature; the runner validates every component node against its class's
  schema before any work, and a YAML file may extend one explicitly in its defaults list.
- ``<stage>/<name>`` for third-party plugins that ship no YAML: selecting them by name works.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, List, Optional

from pipeline.app import registry
from pipeline.core.params import schema_for


@dataclasses.dataclass
class ScheduleConfig:
    # daily | weekly | monthly | quarterly | yearly | once | N (every N bars)
    rebalance: str = "monthly"
    # trade at a decision only if some weight drifted more than this from its target
    drift: Optional[float] = None


@dataclasses.dataclass
class DashboardConfig:
    """The paper/live dashboard (pipeline/dashboard/server.py) on 127.0.0.1; a token is always required."""
    enabled: bool = True
    host: str = "127.0.0.1"
    allow_remote: bool = False       # another host than loopback: plain HTTP to the network
    port: int = 8765
    token: Optional[str] = None      # null: $ROBO_TRADER_DASHBOARD_TOKEN, else a random one, printed


@dataclasses.dataclass
class PretradeConfig:
    """Checks every child order passes before it is sent (pipeline/live/pretrade.py); null = off."""
    max_order_notional: Optional[float] = None      # a child's size x price
    max_position_notional: Optional[float] = None   # the position a child would leave x price
    price_collar: Optional[float] = None            # limit or quote this far from arrival: blocked
    max_orders_per_second: Optional[float] = None   # order rate (waits, never drops)
    use_quotes: bool = True                         # ask the broker for a quote before each child


@dataclasses.dataclass
class KillSwitchConfig:
    """pipeline/live/killswitch.py: engaged by a file, a command, or these limits; null = off."""
    file: Optional[str] = None                      # default <state_dir>/KILL
    max_daily_loss: Optional[float] = None          # fraction of the day's first equity
    max_drawdown: Optional[float] = None            # fraction of the highest equity seen
    max_rejects: Optional[int] = None               # rejected orders in one day


@dataclasses.dataclass
class ModeConfig:
    """backtest | paper | live (conf/mode/); everything but ``name`` is for paper and live."""
    name: str = "backtest"
    run_once: bool = False              # one tick now, then exit
    max_ticks: Optional[int] = None     # stop after this many ticks (null: run on)
    at: Optional[str] = "09:35"         # daily tick time in tz, weekdays
    every_seconds: Optional[float] = None   # or a tick every N seconds
    tz: str = "America/New_York"
    grace_seconds: float = 3600.0       # on start, a tick scheduled this recently runs at once
    bins: int = 13                      # the session's bins for the execution algorithm
    bin_seconds: float = 1800.0         # wall-clock length of one bin
    state_dir: str = "state"            # journal.sqlite and the KILL file live here
    run_id: Optional[str] = None        # part of every orderRef; default: made up once per journal
    confirm: Optional[str] = None       # mode=live: the account id, to confirm
    # refuse to decide on older data: business days (e.g. 2) or a duration (e.g. 36h); null: no check
    max_data_age: Optional[str] = None
    ack_timeout: float = 10.0           # an unacknowledged order is looked up after this long
    settle_seconds: float = 60.0        # after the horizon, wait this long for cancels and fills
    pretrade: PretradeConfig = dataclasses.field(default_factory=PretradeConfig)
    killswitch: KillSwitchConfig = dataclasses.field(default_factory=KillSwitchConfig)


@dataclasses.dataclass
class ReportConfig:
    """report.html (pipeline/report/tearsheet.py); the group conf/report/ fills it."""
    # null: the data source's own; universe (equal-weight buy-and-hold of the data's symbols),
    # a symbol of the data, or a CSV file of levels (dates, then a column of levels)
    benchmark: Optional[str] = None
    # the page's sections in order: modules of pipeline/report/sections/ (or module paths);
    # null: all of them in the default order
    sections: Optional[List[str]] = None


# groups whose options are keyed by name, so that a list composes several (strategy, exits)
KEYED = ("strategy", "exits")


@dataclasses.dataclass
class RecordConfig:
    """How the run folder's tables are written (pipeline/results/recorder.py)."""
    format: Any = "csv"             # csv | parquet | [csv,parquet]


@dataclasses.dataclass
class SweepConfig:
    """A batched sweep (hydra/launcher=batch, pipeline/app/batch.py); no effect on a single run."""
    keep: int = 10          # full run folders for the best this many jobs by the objective
    resume: bool = False    # continue an interrupted sweep in its hydra.sweep.dir: skip the jobs stored


def risk_schema() -> type:
    names = list(registry.registered()["risk"])
    return dataclasses.make_dataclass("RiskConfig", [(n, Any, dataclasses.field(default=None))
                                                     for n in names])


def run_schema() -> type:
    risk = risk_schema()
    return dataclasses.make_dataclass("RunConfig", [
        ("data", Any, dataclasses.field(default="???")),
        ("strategy", Any, dataclasses.field(default="???")),
        ("allocation", Any, dataclasses.field(default="???")),
        ("portfolio", Any, dataclasses.field(default=None)),
        ("sleeve_caps", Any, dataclasses.field(default=None)),
        ("risk", risk, dataclasses.field(default_factory=risk)),
        ("execution", Any, dataclasses.field(default="???")),
        ("broker", Any, dataclasses.field(default="???")),
        ("exits", Any, dataclasses.field(default=None)),
        ("schedule", ScheduleConfig, dataclasses.field(default_factory=ScheduleConfig)),
        ("mode", ModeConfig, dataclasses.field(default_factory=ModeConfig)),
        ("seed", int, dataclasses.field(default=7)),
        ("capital", float, dataclasses.field(default=1_000_000.0)),
        ("progress", bool, dataclasses.field(default=True)),
        ("objective", str, dataclasses.field(default="sharpe")),
        ("walkforward", Any, dataclasses.field(default=None)),
        ("dashboard", DashboardConfig, dataclasses.field(default_factory=DashboardConfig)),
        ("report", ReportConfig, dataclasses.field(default_factory=ReportConfig)),
        ("out_dir", Optional[str], dataclasses.field(default=None)),
        ("record", RecordConfig, dataclasses.field(default_factory=RecordConfig)),
        ("sweep", SweepConfig, dataclasses.field(default_factory=SweepConfig)),
    ])


def register() -> None:
    """Fill the ConfigStore; idempotent, cheap (plugin modules import only numpy)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    cs = ConfigStore.instance()
    cs.store(name="robo_config", node=run_schema())
    for stage, plugins in registry.registered().items():
        files = set(registry.config_files(stage))
        for name, ep in plugins.items():
            try:
                cls = ep.load()
            except Exception as exc:  # one broken third-party plugin must not stop every run
                print(f"robo-trader: warning: plugin {stage}.{name} ({ep.value}) failed to "
                      f"import and is skipped: {exc}", file=sys.stderr)
                continue
            cs.store(group=f"schema/{stage}", name=name, node=schema_for(cls))
            if stage != "risk" and name not in files:
                # every parameter with its default, so stage.name.param=... works as for YAML
                node = OmegaConf.structured(schema_for(cls))
                cs.store(group=stage, name=name, node={name: node} if stage in KEYED else node)
