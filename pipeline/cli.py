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

from pipeline.errors import ConfigError, UserError

EXIT_USER_ERROR = 2


def guarded(main: Callable[[], Any]) -> None:
    from pipeline import config

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
    sys.stderr.write(f"robo-trader: job {hydra.job.num} failed: {' '.join(str(exc).split())}\n")
    if not str(hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        raise exc
    return float("nan")


def user_message(exc: BaseException) -> str | None:
    """One line for a user mistake, or None when ``exc`` is a bug."""
    from hydra.errors import (ConfigCompositionException, MissingConfigException,
                              OverrideParseException)
    from omegaconf.errors import OmegaConfBaseException

    seen = exc
    while seen is not None:
        if isinstance(seen, UserError):
            return f"{seen.kind}: {seen}"
        if isinstance(seen, MissingConfigException):
            return f"config error: {_missing_option(seen)}"
        if isinstance(seen, OmegaConfBaseException) and getattr(seen, "full_key", None):
            return f"config error: {_omegaconf_message(seen)}"
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, (OverrideParseException, ConfigCompositionException)):
        return "config error: " + " ".join(str(exc).split())
    return None


def _missing_option(exc: Any) -> str:
    missing = exc.missing_cfg_file or ""
    group, _, name = missing.rpartition("/")
    if exc.options is not None and group:
        options = ", ".join(sorted(exc.options))
        from pipeline.params import suggest
        return f"{group}={name}: no such option; available: {options}{suggest(name, exc.options)}"
    return " ".join(str(exc).split()[:40])


def _omegaconf_message(exc: Any) -> str:
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError, ValidationError

    key = exc.full_key
    parent = getattr(exc, "parent_node", None)
    if isinstance(exc, ConfigKeyError) or "not in struct" in str(exc) or "not in" in str(exc):
        allowed = _allowed_keys(parent, exc)
        from pipeline.params import suggest
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
        from pipeline.params import import_target
        try:
            return import_target(str(parent["_target_"]), exc.full_key).param_names()
        except ConfigError:
            pass
    return [str(k) for k in parent.keys()] if OmegaConf.is_dict(parent) else []
