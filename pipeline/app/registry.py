"""The plugin registry: every stage's plugins, built-in or third-party, by entry point.

Packages add plugins through the entry-point group ``robo_trader.plugins`` with names
``<stage>.<name>``, e.g. in a plugin package's pyproject.toml::

    [project.entry-points."robo_trader.plugins"]
    "strategy.contrarian" = "my_package.contrarian:Contrarian"

after which ``python run.py strategy=contrarian`` works without any YAML file (its
parameters take the class's defaults and can be set on the command line). robo-trader's own
plugins are registered the same way. ``robo-trader-plugins`` (or ``python -m
pipeline.app.registry``) lists what is registered.
"""

from __future__ import annotations

import functools
import os
import sys
from importlib.metadata import EntryPoint, entry_points

from pipeline.core.configs import conf_dir
from pipeline.core.errors import ConfigError
from pipeline.core.params import suggest

GROUP = "robo_trader.plugins"
STAGES = ("data", "strategy", "allocation", "risk", "execution", "broker", "exits")
CONF_DIR = conf_dir()


@functools.cache
def registered() -> dict[str, dict[str, EntryPoint]]:
    """stage -> name -> entry point, in a stable (sorted) order.

    A name registered by two installed packages is a ConfigError naming both: which one
    would win depends on the order of ``sys.path``, so neither is chosen silently.
    """
    out: dict[str, dict[str, EntryPoint]] = {stage: {} for stage in STAGES}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        stage, _, name = ep.name.partition(".")
        if stage in out and name:
            other = out[stage].get(name)
            if other is not None and _package(other) != _package(ep):
                first, second = sorted((other, ep), key=_package)
                raise ConfigError(
                    f"plugin {ep.name} is registered by two packages: {_package(first)} "
                    f"({first.value}) and {_package(second)} ({second.value}); uninstall one of "
                    f"them (pip uninstall <package>) or rename its entry point in {GROUP}")
            out[stage][name] = ep
    return out


def _package(ep: EntryPoint) -> str:
    return ep.dist.name if ep.dist else "?"


def load(stage: str, name: str) -> type:
    """The class registered as ``stage.name``; a ConfigError lists the names that exist."""
    try:
        ep = registered()[stage][name]
    except KeyError:
        known = ", ".join(registered().get(stage, {})) or "(none)"
        raise ConfigError(f"{stage}.{name} is not a registered {stage} plugin; registered: "
                          f"{known}{suggest(name, registered().get(stage, {}))}") from None
    return ep.load()


def target_path(ep: EntryPoint) -> str:
    return ep.value.replace(":", ".")


def config_files(stage: str) -> list[str]:
    folder = CONF_DIR / stage
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def main(argv: list[str] | None = None) -> int:
    """Print every registered plugin and the config options of each group."""
    try:
        plugins = registered()
    except ConfigError as exc:
        print(f"robo-trader: {exc.kind}: {exc}", file=sys.stderr)
        return 2
    rows = [(stage, name, target_path(ep), _package(ep))
            for stage, eps in plugins.items() for name, ep in eps.items()]
    widths = [max(len(r[i]) for r in rows + [("stage", "name", "target", "package")]) for i in range(4)]
    try:
        print("  ".join(h.ljust(w) for h, w in zip(("stage", "name", "target", "package"), widths)))
        for row in rows:
            print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
        print()
        for stage in STAGES + ("experiment",):
            files = config_files(stage)
            if files:
                print(f"{stage}=  {', '.join(files)}")
        sys.stdout.flush()
    except BrokenPipeError:  # | head read what it wanted: no traceback, nothing more to write
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush too
        return 1
    return 0

if __name__ == "__main__":
    sys.exit(main())
