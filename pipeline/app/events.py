"""The order-book task: event data, one event strategy, the exchange model -> a run folder.

``runner.run`` hands over here when the data source is an ``EventSource``. The daily stages
(allocation, risk, execution) are built and validated like in any run but take no part: one
strategy trades one book. The exchange is ``broker`` when it is an exchange model
(``broker=lob``); the default daily ``broker=sim`` is replaced by ``conf/broker/lob.yaml``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from pipeline.app import registry
from pipeline.core.errors import ConfigError
from pipeline.core.lob import EventSource, EventStrategy, ExchangeModel
from pipeline.core.params import build
from pipeline.report import lob as lob_report
from pipeline.results import lob as lob_results

log = logging.getLogger("robo_trader")


def check(stages: Any) -> None:
    """Event data needs event strategies and daily data daily ones: one line saying which."""
    events = isinstance(stages.data, EventSource)
    for name, strategy in stages.strategies.items():
        if isinstance(strategy, EventStrategy) != events:
            raise ConfigError(
                f"strategy.{name} ({type(strategy).__name__}) trades "
                f"{'bars' if events else 'order-book events'} but data={type(stages.data).__name__} "
                f"holds {'order-book events' if events else 'bars'}: " +
                ("pick an event strategy (strategy=market_maker or strategy=microstructure)" if events
                 else "run it on event data (data=lob_synthetic, or data=lobster data.path=...)"))
    if isinstance(stages.broker, ExchangeModel) and not events:
        raise ConfigError(f"broker={type(stages.broker).__name__} fills order-book events; with "
                          f"data={type(stages.data).__name__} (bars) use broker=sim")
    if events and len(stages.strategies) != 1:
        raise ConfigError(f"strategy: {len(stages.strategies)} strategies on one order book; an "
                          f"order-book run trades one (strategy=market_maker)")


def exchange_of(stages: Any, seed: int) -> ExchangeModel:
    if isinstance(stages.broker, ExchangeModel):
        return stages.broker
    node = OmegaConf.load(registry.CONF_DIR / "broker" / "lob.yaml")
    log.info("broker: %s fills bars; order-book events are filled by broker=lob (conf/broker/lob.yaml)",
             type(stages.broker).__name__)
    return build(node, "broker", ExchangeModel, seed=seed)


def run_events(cfg: Any, stages: Any, out: Path) -> dict[str, Any]:
    exchange = exchange_of(stages, int(cfg.seed))
    [strategy] = stages.strategies.values()
    from pipeline.lob.engine import replay

    started = time.perf_counter()
    result = replay(stages.data.chunks(), strategy, exchange, float(cfg.capital), int(cfg.seed))
    elapsed = time.perf_counter() - started
    metrics = lob_results.record(result, out, cfg, stages, exchange)
    lob_report.write(out)
    print(f"order-book run: {metrics['events']:,} events, {metrics['decisions']:,} decisions in {elapsed:.2f}s\n"
          f"  P&L {metrics['pnl']:,.2f} = spread capture {metrics['spread_capture']:,.2f} + inventory "
          f"{metrics['inventory_pnl']:,.2f} - fees {metrics['fees']:,.2f}\n"
          f"  fills {metrics['fills']} (fill ratio {metrics['fill_ratio']:.3f}), inventory max "
          f"{metrics['max_abs_inventory']:,.0f} final {metrics['final_inventory']:,.0f}\n"
          f"  adverse selection {metrics['adverse_selection_1s']:.4f} (1 s) {metrics['adverse_selection_10s']:.4f} "
          f"(10 s) $/share\n  output {out}")
    return metrics
