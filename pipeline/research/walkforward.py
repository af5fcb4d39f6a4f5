"""Walk-forward evaluation: choose parameters on each training window, judge them out of sample.

``walkforward=<preset>`` (``conf/walkforward/``) names a grid of config overrides, a training
length, a test length and an embargo, all in bars. Every candidate configuration is
backtested once over the whole history (strategies only read the past, so a candidate's
return on any window is what it would have earned there). Then, fold by fold:

    train = [s - embargo - train_bars, s - embargo)     test = [s, s + test_bars)

the candidate with the best ``metric`` on ``train`` is chosen and its returns on ``test`` are
stitched into the out-of-sample record; ``s`` steps by ``test_bars``. The embargo keeps the
returns the choice was made on from touching the test window (Lopez de Prado 2018, ch. 7).

Reported beside it: the in-sample view a plain sweep gives (the best candidate over the whole
history, chosen with hindsight) and the chosen candidates' stitched training-window records.
One approximation, stated: stitching uses each chosen candidate's own path, so the trades
needed to switch from one candidate's book to the next at a fold boundary are not charged.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from pipeline.results import metrics as m
from pipeline.core.errors import ConfigError
from pipeline.results.recorder import write_json


def parse(node: Any, cfg: DictConfig, objectives: tuple[str, ...]) -> dict[str, Any]:
    spec = OmegaConf.to_container(node, resolve=True)
    allowed = {"grid", "train", "test", "embargo", "metric"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ConfigError(f"walkforward.{unknown[0]} is not a key; allowed: {', '.join(sorted(allowed))}")
    grid = spec.get("grid") or {}
    if not grid:
        raise ConfigError("walkforward.grid is empty: give config keys and lists of values to choose from")
    for key, values in grid.items():
        if OmegaConf.select(cfg, key, default="__absent__") == "__absent__":
            raise ConfigError(f"walkforward.grid.{key}: no such config key; grid keys are keys of "
                              f"the run's config, e.g. strategy.momentum.lookback")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"walkforward.grid.{key} must be a non-empty list of values")
    for key in ("train", "test"):
        if not isinstance(spec.get(key), int) or spec[key] < 2:
            raise ConfigError(f"walkforward.{key}={spec.get(key)!r} is not allowed: expected bars >= 2")
    if not isinstance(spec.get("embargo", 0), int) or spec.get("embargo", 0) < 0:
        raise ConfigError(f"walkforward.embargo={spec.get('embargo')!r} is not allowed: expected bars >= 0")
    if spec.get("metric", "sharpe") not in objectives:
        raise ConfigError(f"walkforward.metric={spec.get('metric')!r} is not allowed; "
                          f"allowed: {', '.join(objectives)}")
    return {"grid": grid, "train": spec["train"], "test": spec["test"],
            "embargo": spec.get("embargo", 0), "metric": spec.get("metric", "sharpe")}


def candidates(grid: dict[str, list]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def score(returns: np.ndarray, index: pd.DatetimeIndex, metric: str) -> float:
    """``metric`` of a window of bar returns; NaN when the window has no trading in it."""
    if returns.size < 2 or not np.any(returns):
        return math.nan
    equity = np.cumprod(np.append(1.0, 1.0 + returns))
    ppy = m.periods_per_year(index)
    values = {
        "sharpe": lambda: m.sharpe(returns, ppy), "sortino": lambda: m.sortino(returns, ppy),
        "annual_vol": lambda: m.annual_vol(returns, ppy), "total_return": lambda: m.total_return(equity),
        "max_drawdown": lambda: m.max_drawdown(equity),
        "cagr": lambda: m.cagr(equity[1:], index), "calmar": lambda: m.calmar(equity[1:], index),
    }
    if metric not in values:
        raise ConfigError(f"walkforward.metric={metric!r} cannot be scored on a window; use one of "
                          f"{', '.join(values)}")
    return float(values[metric]())


LOWER_IS_BETTER = ("annual_vol",)


def folds(n_bars: int, first: int, train: int, test: int, embargo: int) -> list[tuple[int, int, int, int]]:
    """(train_start, train_end, test_start, test_end) with ends exclusive."""
    out = []
    start = first + train + embargo
    while start < n_bars:
        out.append((start - embargo - train, start - embargo, start, min(start + test, n_bars)))
        start += test
    return out


def evaluate(returns: np.ndarray, index: pd.DatetimeIndex, spec: dict[str, Any], first: int) -> dict[str, Any]:
    """Choose per fold on ``returns`` (bars x candidates); the stitched out-of-sample record."""
    sign = -1.0 if spec["metric"] in LOWER_IS_BETTER else 1.0
    rows, stitched, chosen = [], [], []
    for a, b, c, d in folds(len(index), first, spec["train"], spec["test"], spec["embargo"]):
        scores = np.array([score(returns[a:b, j], index[a:b], spec["metric"]) for j in range(returns.shape[1])])
        if np.isnan(scores).all():
            continue  # no candidate traded in this training window yet
        best = int(np.nanargmax(sign * scores))
        rows.append({"train_start": index[a], "train_end": index[b - 1], "test_start": index[c],
                     "test_end": index[d - 1], "candidate": best, "train_score": scores[best],
                     "test_score": score(returns[c:d, best], index[c:d], spec["metric"])})
        stitched.append(returns[c:d, best])
        chosen.append(np.full(d - c, best))
    if not rows:
        raise ConfigError(f"walkforward: no fold fits: {len(index)} bars, warm-up {first}, "
                          f"train {spec['train']} + embargo {spec['embargo']}; shorten walkforward.train")
    return {"folds": pd.DataFrame(rows), "returns": np.concatenate(stitched), "chosen": np.concatenate(chosen)}


def write(out: Path, result: dict[str, Any], grid: list[dict[str, Any]], returns: np.ndarray,
          index: pd.DatetimeIndex, spec: dict[str, Any]) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    table = result["folds"].copy()
    table["params"] = [json.dumps(grid[j], sort_keys=True) for j in table["candidate"]]
    # times in UTC, as the run folders write them: one offset, so the files parse as dates
    for col in ("train_start", "train_end", "test_start", "test_end"):
        table[col] = pd.DatetimeIndex(table[col]).tz_convert("UTC")
    table.to_csv(out / "walkforward.csv", index=False)
    n_oos = result["returns"].size
    oos_index = index[len(index) - n_oos:]
    pd.DataFrame({"return": result["returns"], "candidate": result["chosen"]},
                 index=pd.Index(oos_index.tz_convert("UTC"), name="time")).to_csv(out / "oos_returns.csv")
    full = np.array([score(returns[:, j], index, spec["metric"]) for j in range(returns.shape[1])])
    sign = -1.0 if spec["metric"] in LOWER_IS_BETTER else 1.0
    hindsight = int(np.nanargmax(sign * full))
    summary = {
        "metric": spec["metric"],
        "candidates": len(grid),
        "folds": len(table),
        "out_of_sample": _window_metrics(result["returns"], oos_index),
        "in_sample_best_over_whole_history": {"params": grid[hindsight], spec["metric"]: full[hindsight],
                                              "same_period": _window_metrics(returns[len(index) - n_oos:, hindsight], oos_index)},
        "in_sample_chosen_on_training_windows": float(np.nanmean(table["train_score"])),
    }
    write_json(summary, out / "metrics.json")
    return summary


def _window_metrics(r: np.ndarray, index: pd.DatetimeIndex) -> dict[str, float]:
    equity = np.cumprod(np.append(1.0, 1.0 + r))[1:]
    ppy = m.periods_per_year(index)
    return {"total_return": m.total_return(np.append(1.0, equity)), "cagr": m.cagr(equity, index),
            "sharpe": m.sharpe(r, ppy), "annual_vol": m.annual_vol(r, ppy), "max_drawdown": m.max_drawdown(equity)}
