"""Components, their typed schemas, and building them from config nodes.

A component is a plain class configured only by its ``__init__`` keyword arguments (the
shape of skfolio's estimators). Its typed schema is generated from that signature, the way
hydra-zen's ``builds`` does, so the signature stays the single source of truth: annotations
give the types, defaults give the defaults, ``typing.Literal`` gives the allowed choices, and
the class attribute ``rules`` adds numeric ranges, e.g. ``{"lookback": "[1, inf)"}``.

A window (a parameter annotated ``Window``: lookbacks, covariance windows) is an int, which
counts bars, or a duration: ``20d`` / ``20 sessions`` (sessions of the data, each its median
number of bars, so ``20d`` is 20 on daily data) or ``90min`` / ``2h`` (time at the data's bar
size: a whole number of bars, less than a day). A duration's text is checked when the
component is built; ``pipeline.core.windows.in_bars`` turns it into bars, once the data are
known, and checks the component's ``rules`` on the bars.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import inspect
import math
import re
import types
import typing
from typing import Annotated, Any, ClassVar, Optional, Union

from pipeline.core.errors import ConfigError, UserError


class Component:
    """Base of every plugin: parameters are the ``__init__`` keywords, stored unchanged."""

    rules: ClassVar[dict[str, str]] = {}

    @classmethod
    def param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in list(sig.parameters.values())[1:]
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


WINDOW = "window: bars, sessions or time"
Window = Annotated[Union[int, str], WINDOW]  # see the module's docstring
_SESSIONS = re.compile(r"^(\d+)\s*(d|day|days|session|sessions)$")
_WINDOW_TEXT = ("an int (bars) or a duration: sessions as 20d or '20 sessions', time as 90min "
                "or 2h")


@functools.cache
def window_params(cls: type) -> list[str]:
    """The parameters of ``cls`` annotated ``Window``."""
    try:
        hints = typing.get_type_hints(cls.__init__, include_extras=True)
    except Exception:
        return []
    return [n for n, h in hints.items() if typing.get_origin(h) is Annotated and WINDOW in h.__metadata__]


def parse_window(value: Any, key: str) -> tuple[str, Any]:
    """``("bars", n)``, ``("sessions", n)`` or ``("time", Timedelta)``; a ConfigError naming
    ``key`` when ``value`` is none of them."""
    if isinstance(value, int) and not isinstance(value, bool):
        return "bars", value
    text = str(value).strip().lower() if isinstance(value, str) else ""
    if text.isdigit():
        return "bars", int(text)
    found = _SESSIONS.match(text)
    if found:
        return "sessions", int(found.group(1))
    import pandas as pd  # loaded when a duration is given, not with the config machinery

    try:
        span = pd.Timedelta(text) if text[:1].isdigit() else None
    except ValueError:
        span = None
    if span is None or not pd.Timedelta(0) < span < pd.Timedelta(days=1):
        raise ConfigError(f"{key}={value!r} is not a window: expected {_WINDOW_TEXT}")
    return "time", span


# ---------------------------------------------------------------- rules (ranges, choices)

def _parse_interval(rule: str) -> tuple[float, float, bool, bool]:
    lo_s, hi_s = rule[1:-1].split(",")
    return float(lo_s), float(hi_s), rule[0] == "[", rule[-1] == "]"


def check_rule(value: Any, rule: str) -> bool:
    """True when ``value`` satisfies an interval rule such as ``"(0, 1]"`` or ``"[1, inf)"``."""
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if not math.isfinite(value):
        return False
    lo, hi, lo_closed, hi_closed = _parse_interval(rule)
    above = value >= lo if lo_closed else value > lo
    below = value <= hi if hi_closed else value < hi
    return above and below


def allowed_text(cls: type, name: str) -> str:
    """What a parameter accepts, in words, for error messages and ``--help``."""
    hint = _hints(cls).get(name, Any)
    if name in window_params(cls):
        rule = cls.rules.get(name) if hasattr(cls, "rules") else None
        return _WINDOW_TEXT + (f", in bars {rule}" if rule else "")
    choices = _literal_choices(hint)
    if choices:
        return "one of " + ", ".join(map(str, choices))
    rule = cls.rules.get(name) if hasattr(cls, "rules") else None
    type_name = _type_name(hint)
    article = "an" if type_name[:1] in "aeiou" else "a"
    return f"{article} {type_name} in {rule}" if rule else f"{article} {type_name}"


def validate_values(cls: type, values: dict[str, Any], path: str,
                    shown: dict[str, Any] | None = None) -> None:
    """Raise ConfigError naming ``path.key`` for the first value outside its rule or choices.

    ``shown`` holds the values as the user wrote them (before type conversion) for messages.
    """
    hints = _hints(cls)
    shown = shown or {}
    windows = window_params(cls)
    for name, value in values.items():
        if name in windows and isinstance(value, str):  # its rule holds for the bars (``in_bars``)
            parse_window(value, f"{path}.{name}")
            continue
        choices = _literal_choices(hints.get(name, Any))
        rule = getattr(cls, "rules", {}).get(name)
        bad = (choices and value not in choices) or (rule and not check_rule(value, rule))
        if bad:
            raise ConfigError(f"{path}.{name}={shown.get(name, value)!r} is not allowed: expected "
                              f"{allowed_text(cls, name)}")


# ---------------------------------------------------------------- typed schemas

@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable forward references: fall back to untyped
        return {}


def _literal_choices(hint: Any) -> tuple:
    if typing.get_origin(hint) is typing.Literal:
        return typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if typing.get_origin(arg) is typing.Literal:
                return typing.get_args(arg) + ((None,) if type(None) in typing.get_args(hint) else ())
    return ()


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return " or ".join(_type_name(a) for a in args) + " or null"
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return getattr(hint, "__name__", "value")


_SCALARS = (int, float, bool, str)


def _omegaconf_type(hint: Any) -> Any:
    """Map an annotation to one OmegaConf can enforce; anything richer becomes Any."""
    if hint in _SCALARS or hint is Any:
        return hint
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Literal:
        kinds = {type(a) for a in args}
        return kinds.pop() if len(kinds) == 1 and next(iter(kinds), None) in _SCALARS else Any
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1 and type(None) in args:
            mapped = _omegaconf_type(inner[0])
            return Optional[mapped] if mapped is not Any else Any
        return Any
    if origin in (list, tuple, typing.Sequence) and args:
        item = _omegaconf_type(args[0])
        return list[item] if item in _SCALARS else Any
    if origin is dict and len(args) == 2 and args[0] is str:
        return dict[str, Any]
    return Any


@functools.cache
def schema_for(cls: type) -> type:
    """A dataclass mirroring ``cls.__init__``: the component's typed config schema."""
    hints = _hints(cls)
    target = f"{cls.__module__}.{cls.__qualname__}"
    fields: list[tuple] = [("_target_", str, dataclasses.field(default=target))]
    sig = inspect.signature(cls.__init__)
    for p in list(sig.parameters.values())[1:]:
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            continue
        kind = _omegaconf_type(hints.get(p.name, Any))
        if p.default is p.empty:
            default = dataclasses.field(default="???")
        elif isinstance(p.default, (list, dict)):
            default = dataclasses.field(default_factory=functools.partial(type(p.default), p.default))
        elif p.default is None or isinstance(p.default, _SCALARS):
            default = dataclasses.field(default=p.default)
        else:  # an object default cannot live in a config: leave it to the class
            kind, default = Any, dataclasses.field(default=None)
        fields.append((p.name, kind, default))
    return dataclasses.make_dataclass(f"{cls.__name__}Config", fields)


# ---------------------------------------------------------------- building components

def import_target(path: str, where: str) -> type:
    module_name, _, attr = path.replace(":", ".").rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"{where}._target_: cannot import {path!r} ({exc}); check the "
                          f"module path, or install the package that provides it") from None


def suggest(name: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _allowed_names(names: list[str]) -> str:
    return f"allowed: {', '.join(names)}" if names else "it takes no parameters"


def build(node: Any, path: str, expected: type | None = None, **extra: Any) -> Any:
    """Validate a config node against its class's schema and rules, then instantiate it.

    ``path`` is the node's full key (``allocation``, ``strategy.momentum``) so every error
    names the key to fix. ``extra`` keywords are passed to the constructor (runtime values
    such as the run's seed) only where the signature accepts them.
    """
    from hydra.utils import instantiate
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import ConfigKeyError, ValidationError

    if not isinstance(node, (DictConfig, dict)) or "_target_" not in node:
        raise ConfigError(f"{path}: expected a component with a _target_ (got {node!r}); "
                          f"pick a config file for this group or give _target_")
    cls = import_target(str(node["_target_"]), path)
    if expected is not None and not (isinstance(cls, type) and issubclass(cls, expected)):
        raise ConfigError(f"{path}._target_: {cls!r} is not a {expected.__name__}; "
                          f"this group needs a subclass of pipeline.core.contracts.{expected.__name__}")
    user = OmegaConf.create(OmegaConf.to_container(node, resolve=True)) if isinstance(node, DictConfig) \
        else OmegaConf.create(dict(node))
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema_for(cls)), user)
    except ConfigKeyError as exc:
        key = str(exc.key)
        names = cls.param_names()
        raise ConfigError(f"{path}.{key} is not a parameter of {cls.__name__}; "
                          f"{_allowed_names(names)}{suggest(key, names)}") from None
    except ValidationError as exc:
        key = str(exc.key)
        raise ConfigError(f"{path}.{key}={user.get(key)!r} is not allowed: expected "
                          f"{allowed_text(cls, key)}") from None
    missing = [k for k in cls.param_names() if OmegaConf.is_missing(merged, k)]
    if missing:
        raise ConfigError(f"{path}.{missing[0]} is required by {cls.__name__}; set it in the "
                          f"config file or on the command line ({path}.{missing[0]}=...)")
    values = {k: merged[k] for k in cls.param_names()}
    validate_values(cls, {k: (v if not OmegaConf.is_config(v) else None) for k, v in values.items()},
                    path, shown={k: v for k, v in user.items() if not OmegaConf.is_config(v)})
    accepted = set(cls.param_names())
    kwargs = {k: v for k, v in extra.items() if k in accepted and k not in user}
    try:
        return instantiate(merged, _convert_="all", **kwargs)
    except Exception as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, UserError):  # the component's own one-line error, as it wrote it
            raise cause from None
        if isinstance(cause, (ValueError, TypeError)):
            raise ConfigError(f"{path}: {cause}") from None
        raise
