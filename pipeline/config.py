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
from typing import Any, Optional

from pipeline import registry


@dataclasses.dataclass
class ScheduleConfig:
    # daily | weekly | monthly | quarterly | yearly | once | N (every N bars)
    rebalance: str = "monthly"
    # trade at a decision only if some weight drifted more than this from its target
    drift: Optional[float] = None


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
        ("schedule", ScheduleConfig, dataclasses.field(default_factory=ScheduleConfig)),
        ("seed", int, dataclasses.field(default=7)),
        ("capital", float, dataclasses.field(default=1_000_000.0)),
        ("progress", bool, dataclasses.field(default=True)),
        ("objective", str, dataclasses.field(default="sharpe")),
        ("walkforward", Any, dataclasses.field(default=None)),
        ("out_dir", Optional[str], dataclasses.field(default=None)),
    ])


def register() -> None:
    """Fill the ConfigStore; idempotent, cheap (plugin modules import only numpy)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    from pipeline.params import schema_for

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
                cs.store(group=stage, name=name, node={name: node} if stage == "strategy" else node)
