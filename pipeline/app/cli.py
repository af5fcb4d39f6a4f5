"""The command line: register schemas, run Hydra, and turn user mistakes into one line.

Hydra prints composition errors over several lines with hints meant for Hydra users; here a
user error becomes ``robo-trader: config error: <key>: <what is wrong>; <what is allowed>`` on
stderr and exit code 2. Anything else is a bug and keeps its traceback. Set
HYDRA_FULL_ERROR=1 to see Hydra's own reports.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

from pipeline.app import config, registry
from pipeline.core.configs import search_path
from pipeline.core.errors import ConfigError, UserError
from pipeline.core.params import import_target, suggest
from pipeline.report.console import job_counter

EXIT_USER_ERROR = 2
# robo-trader <subcommand> ...: the tools that are also ``python -m <module>``, run as -m runs
# them (by name: the fake gateway is a test double nothing in pipeline/ imports)
SUBCOMMANDS = {
    "plugins": ("pipeline.app.registry", "every registered plugin and each group's options"),
    "report": ("pipeline.report", "rebuild report.html of finished run folders"),
    "dashboard": ("pipeline.dashboard", "replay a finished run on the live dashboard"),
    "killswitch": ("pipeline.live.killswitch", "engage, release or show the trading kill switch"),
    "fake-gateway": ("plugins.broker.ib.fake_gateway", "a fake IB Gateway for dry runs"),
}


def main() -> None:
    """``robo-trader``: ``python run.py`` from any folder (the same Hydra command line, help and
    errors, the configs of the installed package), or ``robo-trader <subcommand> ...``."""
    import runpy

    argv = sys.argv[1:]
    if argv and argv[0] in SUBCOMMANDS:
        module = SUBCOMMANDS[argv[0]][0]
        sys.argv = [f"robo-trader {argv[0]}", *argv[1:]]
        if module == "pipeline.app.registry":  # imported already: run_module would run it twice
            sys.exit(registry.main(argv[1:]))
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return
    one_blas_thread()
    import hydra

    guarded(hydra.main(config_path=search_path(), config_name="config", version_base="1.3")(
        report_user_errors(task)))


def one_blas_thread() -> None:
    """The allocators solve many small problems; BLAS threads only contend with each other and
    with the other jobs of a sweep (200-asset risk parity: 1.1 ms per decision on one thread,
    50 ms on two busy ones). Call before numpy loads; an explicit setting in the environment wins."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def task(cfg: Any) -> Any:
    from pipeline.app.runner import main as task

    return task(cfg)


def guarded(main: Callable[[], Any]) -> None:
    register_resolvers()
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        config.register()
        main()
        return
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let exceptions reach us instead of Hydra's printer
    try:
        config.register()
        main()
    except Exception as exc:  # translate what a user can fix; re-raise what they cannot
        message = user_message(exc)
        if message is None:
            raise
        sys.stderr.write(f"robo-trader: {message}\n")
        sys.exit(EXIT_USER_ERROR)


def report_user_errors(task: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap the Hydra task so that a failure is reported the way the mode needs.

    A single run: a user error prints one line and exits 2 (Hydra would otherwise add "Error
    executing job with overrides ..."). A multirun: any failure is written to the job's
    ``error.txt``. Under Hydra's basic sweeper the job then returns NaN, so the sweep goes on
    and its summary lists the job as failed (that sweeper stops at the first exception and
    skips the end-of-sweep callbacks); other sweepers (Optuna) get the exception, which they
    record as a failed trial.
    """
    import functools

    @functools.wraps(task)
    def wrapper(cfg: Any) -> Any:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        sweeping = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
        try:
            return task(cfg)
        except UserError as exc:
            if sweeping:
                return _failed_job(exc)
            sys.stderr.write(f"robo-trader: {exc.kind}: {exc}\n")
            sys.exit(EXIT_USER_ERROR)
        except Exception as exc:
            if not sweeping:
                raise
            return _failed_job(exc)

    return wrapper


def _failed_job(exc: BaseException) -> float:
    import traceback
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig

    hydra = HydraConfig.get()
    out = Path(hydra.runtime.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    detail = "" if isinstance(exc, UserError) else "".join(traceback.format_exception(exc))
    (out / "error.txt").write_text(f"{type(exc).__name__}: {' '.join(str(exc).split())}\n{detail}")
    sys.stderr.write(f"robo-trader: {job_counter(hydra.job.num)}job {hydra.job.num} failed: "
                     f"{' '.join(str(exc).split())}\n")
    target = str(hydra.sweeper.get("_target_", ""))
    grid = target.endswith("BasicSweeper") or (target.endswith("BatchSweeper") and hydra.sweeper.get("n_trials") is None)
    if not grid:
        raise exc
    return float("nan")


def user_message(exc: BaseException) -> str | None:
    """One line for a user mistake, or None when ``exc`` is a bug."""
    from hydra.errors import (ConfigCompositionException, MissingConfigException,
                              OverrideParseException)
    import yaml
    from omegaconf.errors import OmegaConfBaseException

    seen = exc
    while seen is not None:
        if isinstance(seen, UserError):
            return f"{seen.kind}: {seen}"
        if isinstance(seen, MissingConfigException):
            return f"config error: {_missing_option(seen)}"
        if isinstance(seen, OmegaConfBaseException) and getattr(seen, "full_key", None):
            return f"config error: {_omegaconf_message(seen)}"
        if isinstance(seen, yaml.MarkedYAMLError) and seen.problem_mark is not None:
            return f"config error: {_yaml_message(seen)}"
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, (OverrideParseException, ConfigCompositionException)):
        return "config error: " + " ".join(str(exc).split())
    return None


def _missing_option(exc: Any) -> str:
    missing = exc.missing_cfg_file or ""
    group, _, name = missing.rpartition("/")
    if exc.options is not None and group:
        options = ", ".join(sorted(exc.options))
        return f"{group}={name}: no such option; available: {options}{suggest(name, exc.options)}"
    return " ".join(str(exc).split()[:40])


def _yaml_message(exc: Any) -> str:
    """``<file>, line L, column C: <problem>``, with where the construct began when PyYAML knows."""
    mark = exc.problem_mark  # 0-based, as PyYAML keeps them
    where = f"{mark.name}, line {mark.line + 1}, column {mark.column + 1}"
    began = exc.context_mark
    context = (f" ({exc.context} at line {began.line + 1}, column {began.column + 1})"
               if exc.context and began is not None else "")
    return f"{where}: invalid YAML: {exc.problem}{context}; fix the file's syntax there"


def _omegaconf_message(exc: Any) -> str:
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError, ValidationError

    key = exc.full_key
    parent = getattr(exc, "parent_node", None)
    if isinstance(exc, ConfigKeyError) or "not in struct" in str(exc) or "not in" in str(exc):
        allowed = _allowed_keys(parent, exc)
        leaf = key.rpartition(".")[2]
        present = set(parent.keys()) if parent is not None and OmegaConf.is_dict(parent) else set()
        if leaf in allowed and leaf not in present:
            return (f"{key} is a parameter, but its config file does not list it: write "
                    f"+{key}=... to set it, or add it to the YAML file")
        listed = f"allowed here: {', '.join(allowed)}" if allowed else "nothing can be set here"
        return f"{key} is not a known key; {listed}{suggest(leaf, allowed)}"
    if isinstance(exc, ValidationError):
        return f"{key}={exc.value!r} is not allowed: {exc.msg.splitlines()[0]}"
    return f"{key}: {exc.msg.splitlines()[0]}"


def _allowed_keys(parent: Any, exc: Any) -> list[str]:
    """The keys valid beside the misspelt one: a component's parameters, or the node's keys."""
    from omegaconf import OmegaConf

    if parent is None:
        return []
    if OmegaConf.is_dict(parent) and "_target_" in parent:
        try:
            cls = import_target(str(parent["_target_"]), exc.full_key)
        except ConfigError:
            cls = None
        if hasattr(cls, "param_names"):
            return cls.param_names()
        if cls is not None:  # not a component (a Hydra launcher, a sweeper): its node's keys
            return [str(k) for k in parent.keys() if k != "_target_"]
    return [str(k) for k in parent.keys()] if OmegaConf.is_dict(parent) else []


# ---------------------------------------------------------------------------------------------
# python run.py --help: conf/hydra/help/robo_trader.yaml calls ${robo_help:}, which writes the
# groups, their options and the parameters each option sets, from the files under conf/ (so a
# new option file shows up with no change here).

GROUPS = {
    "data": "where the prices come from; every source takes data.start, data.end, data.symbols",
    "strategy": "the signal: which symbols to hold and which way; a list (strategy=[momentum,pairs]) "
                "runs several sleeves; parameters are keyed by name: strategy.momentum.lookback=126",
    "allocation": "weighs the assets a strategy picked",
    "portfolio": "weighs the sleeves by their return streams when several strategies run; the same "
                 "options as allocation (portfolio=risk_parity), set with portfolio.<param>=...",
    "risk": "an ordered list of constraints on the weights; a preset, then risk.<constraint>=value "
            "(null turns one off)",
    "execution": "how a parent order becomes child orders over the next session's intraday bins",
    "broker": "who fills the orders and what it costs",
    "exits": "exit rules checked every bar between decisions; keyed by name, a list runs several "
             "(exits=[stop_loss,take_profit] exits.stop_loss.pct=0.08)",
    "mode": "backtest, paper or live",
    "experiment": "presets that set several groups at once",
    "hparams_search": "an Optuna search over parameters (a multirun)",
    "walkforward": "a walk-forward test: choose parameters on each training window, test on the next",
}
ORDER = ("data", "strategy", "allocation", "portfolio", "risk", "execution", "broker", "exits", "mode")


def _comment(path: Any, limit: int = 88) -> str:
    """The first sentence of a YAML file's leading comment, cut to ``limit`` characters."""
    import re

    words = []
    for line in path.read_text().splitlines():
        text = line.strip()
        if text.startswith("# @package"):
            continue
        if not text.startswith("#"):
            break
        words.append(text.lstrip("#").strip())
    about = " ".join(w for w in words if w)
    m = re.search(r"(?<=\.)\s|\s\((?=plugins/|pipeline/)", about)
    about = about[:m.start()] if m else about
    about = about.rstrip(" .:;")
    return about if len(about) <= limit else about[:limit - 3].rstrip() + "..."


def _value(v: Any) -> str:
    return "null" if v is None else ("true" if v is True else "false" if v is False else str(v))


def _params(node: Any, prefix: str = "") -> list[str]:
    out = []
    if not isinstance(node, dict):
        return out
    for key, value in node.items():
        if key in ("_target_", "defaults", "hydra"):
            continue
        if isinstance(value, dict) and "_target_" in value:
            out.append(f"{prefix}{key}=<{str(value['_target_']).rsplit('.', 1)[-1]}>")
        elif isinstance(value, (dict, list)):
            out.append(f"{prefix}{key}=...")
        else:
            out.append(f"{prefix}{key}={_value(value)}")
    return out


def _wrap(text: str, indent: int, width: int = 100) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width=width, initial_indent=" " * indent, subsequent_indent=" " * indent,
                         break_on_hyphens=False) or [" " * indent]


def help_text(choices: Any = None) -> str:
    import yaml

    conf = registry.CONF_DIR
    groups = sorted({p.name for p in conf.iterdir() if p.is_dir() and p.name != "hydra"} | set(registry.STAGES),
                    key=lambda g: (ORDER.index(g) if g in ORDER else len(ORDER), g))
    chosen = {}
    if choices is not None:
        for key, value in dict(choices).items():
            chosen[str(key)] = value
    lines = [
        "robo-trader: a declarative trading pipeline, one config for backtest, paper and live",
        "  data -> signal -> allocate -> risk -> execute -> broker -> record",
        "",
        "Usage",
        "  python run.py [group=option ...] [key=value ...]   a backtest; writes outputs/<date>/<time>/",
        "                                                     (report.html: the run's tearsheet)",
        "  python run.py -m key=a,b group=x,y ...             a sweep, one job per combination; sweep.csv,",
        "                                                     summary.md and summary.html at the end",
        "  python run.py --help [overrides]                   this help, showing the config those overrides compose",
        "  python run.py --cfg job [overrides]                print the composed config and stop",
        "  python -m pipeline.app.registry                        every registered plugin",
        "  python -m pipeline.report <run folder>             rebuild a run's report.html",
        "  python -m pipeline.dashboard replay <run folder>   replay a run on the live dashboard",
        "  robo-trader [overrides]                            python run.py ..., installed, from any folder",
        *[f"  robo-trader {name} ...".ljust(53) + about for name, (_, about) in SUBCOMMANDS.items()],
        "",
        "Config groups: choose an option with group=option (* marks the current one); set one of its",
        "parameters with group.param=value (shown with their values); add a parameter the file does",
        "not list with +group.param=value.",
    ]
    stages = registry.registered()
    for group in groups:
        folder = conf / group
        files = {p.stem: p for p in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}
        names = sorted(set(files) | (set(stages.get(group, {})) if group != "risk" else set()))
        if not names:
            continue
        current = chosen.get(group)
        current = set(current) if isinstance(current, (list, tuple)) else {current}
        lines += ["", f"{group}"] + _wrap(GROUPS.get(group, ""), 2)
        if group == "portfolio":  # the allocation options again, weighing sleeves
            lines += _wrap("options: " + ", ".join(("*" if n in current else "") + n for n in names), 4)
            continue
        width = max(len(n) for n in names) + 2
        for name in names:
            mark = "*" if name in current else " "
            if name in files:
                about = _comment(files[name])
                try:
                    node = yaml.safe_load(files[name].read_text()) or {}
                except yaml.YAMLError:
                    node = {}
                if group in ("strategy", "exits") and isinstance(node, dict) and len(node) == 1:
                    node = next(iter(node.values()))
                params = [] if group == "portfolio" else _params(node)
            else:  # a registered plugin without a YAML file: its class's parameters and defaults
                about, params = f"registered plugin {registry.target_path(stages[group][name])}", []
                try:
                    import inspect

                    cls = stages[group][name].load()
                    params = [f"{p.name}={_value(p.default)}" for p in inspect.signature(cls.__init__).parameters.values()
                              if p.name != "self" and p.default is not inspect.Parameter.empty]
                except Exception:  # a broken third-party plugin: list it without parameters
                    pass
            lines.append(f"  {mark} {name.ljust(width)}{about}")
            if params:
                lines += _wrap(" ".join(params), 6 + width)
        if group == "risk":
            constraints = ", ".join(stages.get("risk", {}))
            lines += _wrap(f"constraints (risk.<name>=value, applied in their declared order): {constraints}", 2)
    lines += ["", "Top-level keys"]
    lines += _top_level_keys(conf / "config.yaml")
    lines += ["", "Examples",
              "  python run.py allocation=risk_parity execution=vwap",
              "  python run.py strategy=[momentum,buy_and_hold] portfolio=inverse_vol",
              "  python run.py data=stocks strategy.momentum.lookback=126 risk.max_weight=0.3",
              "  python run.py -m strategy.momentum.lookback=63,126,252 allocation=equal_weight,inverse_vol",
              "  python run.py -m hydra/launcher=joblib hydra.launcher.n_jobs=2 ...",
              ""]
    return "\n".join(lines).replace("$", "$$")  # the template's $NAMES are Hydra's; ours are literal


def _top_level_keys(path: Any) -> list[str]:
    import re

    out, parent, block = [], "", None
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        top = not line.startswith(" ")
        if top:
            block = line.split(":", 1)[0]
        if block in ("defaults", "hydra"):
            continue
        m = re.match(r"^(\s*)([A-Za-z_]\w*):\s*(.*?)\s*(?:#\s*(.*))?$", line)
        if not m:
            continue
        indent, key, value, note = m.groups()
        if not indent:
            parent = key if not value else ""
            if not value:
                continue
            name = key
        else:
            name = f"{parent}.{key}" if parent else key
        out.append(f"  {(name + '=' + value).ljust(26)} {note or ''}".rstrip())
    return out


def register_resolvers() -> None:
    """The resolvers conf/ calls: ``robo_help`` (the help template,
    ``conf/hydra/help/robo_trader.yaml``) and ``robo_run_dir`` (``hydra.run.dir``,
    conf/config.yaml)."""
    from omegaconf import OmegaConf

    def robo_help(_root_: Any = None) -> str:
        try:
            choices = _root_.hydra.runtime.choices if _root_ is not None else None
        except Exception:  # noqa: BLE001 - no choices: nothing marked as current
            choices = None
        return help_text(choices)

    def robo_run_dir(out_dir: Any, default: str) -> str:
        # out_dir set: Hydra's run folder is the run's folder, so its .hydra/ and run.log go
        # there too and nothing is written under outputs/ (oc.select would keep out_dir's null)
        return default if out_dir in (None, "") else str(out_dir)

    for name, resolver in (("robo_help", robo_help), ("robo_run_dir", robo_run_dir)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)
