"""Windows given as durations turned into bars once the data are known (see
``pipeline.core.params``: a ``Window`` parameter is an int of bars, ``20d`` / ``20 sessions``
or ``90min`` / ``2h``).

Sessions count the data's median bars per session (``MarketData.sessions``: 1 on daily bars,
so ``20d`` is 20 there); a time is a whole number of bars at the data's bar size. The
conversion happens once, on the data the run loaded (the backtest's whole history, live's
history at the tick), so a strategy still sees a fixed number of bars at every decision.
"""

from __future__ import annotations

from typing import Any

from pipeline.core.errors import ConfigError
from pipeline.core.market import MarketData, bar_label
from pipeline.core.params import Component, check_rule, parse_window, window_params


def window_bars(value: Any, key: str, data: MarketData) -> int:
    """A window in bars of ``data``: see the module's docstring."""
    kind, amount = parse_window(value, key)
    if kind == "bars":
        return int(amount)
    if kind == "sessions":
        return int(round(amount * data.bars_per_session))
    bar = data.bar_length
    if amount % bar:
        raise ConfigError(f"{key}={value!r} is not a whole number of the data's {bar_label(bar)} "
                          f"bars; write a multiple of {bar_label(bar)} or sessions (20d)")
    return int(amount // bar)


def in_bars(component: Any, data: MarketData, path: str) -> Any:
    """``component`` with its ``Window`` parameters in bars of ``data`` (a new instance, built
    from its parameters), those of the components among its parameters too (a regime filter's
    base strategy); the same object when they are all ints already. ``path`` is its config
    key, for messages."""
    if not isinstance(component, Component):
        return component
    params = component.get_params()
    inner = {n: in_bars(v, data, f"{path}.{n}") for n, v in params.items() if isinstance(v, Component)}
    given = {n: params[n] for n in window_params(type(component)) if isinstance(params[n], str)}
    if not given and all(inner[n] is params[n] for n in inner):
        return component
    bars = {**inner, **{n: window_bars(v, f"{path}.{n}", data) for n, v in given.items()}}
    for name, n in bars.items():
        if name in inner:
            continue
        rule = getattr(type(component), "rules", {}).get(name)
        if rule and not check_rule(n, rule):
            raise ConfigError(f"{path}.{name}={given[name]!r} is {n} bars of {data.name}, not "
                              f"allowed: expected a number of bars in {rule}")
    try:
        return type(component)(**{**params, **bars})
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: {exc} (windows in bars: "
                          f"{', '.join(f'{n}={given[n]!r} is {bars[n]}' for n in given)})") from None
