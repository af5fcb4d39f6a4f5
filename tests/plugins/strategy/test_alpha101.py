"""Issue 20.3: eight of Kakushadze's "101 Formulaic Alphas" (2016) as YAML presets, each equal on
the bundled OHLCV data (data=stocks) to a plain pandas implementation of the paper's formula."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from pipeline.core.contracts import Strategy
from pipeline.core.params import build
from plugins.data.stocks import Stocks

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def frames():
    data = Stocks().load()
    f = {name: pd.DataFrame(getattr(data, name), index=data.index, columns=data.symbols)
         for name in ("open", "high", "low", "close", "volume")}
    f["returns"] = f["close"].pct_change(fill_method=None)
    f["vwap"] = (f["high"] + f["low"] + f["close"]) / 3          # the typical-price proxy
    f["adv20"] = (f["close"] * f["volume"]).rolling(20).mean()
    return data, f


# The paper's operators (its appendix A), written with pandas alone.
def rank(x):
    return x.rank(axis=1, pct=True)


def delta(x, d):
    return x - x.shift(d)


def correlation(x, y, d):
    return x.rolling(d).corr(y)


def ts_rank(x, d):
    return x.rolling(d).rank(pct=True)


def paper(f, k: str) -> pd.DataFrame:
    o, h, lo, c, v, ret, vwap = (f[n] for n in ("open", "high", "low", "close", "volume",
                                                 "returns", "vwap"))
    if k == "002":
        return -1 * correlation(rank(delta(np.log(v), 2)), rank((c - o) / o), 6)
    if k == "006":
        return -1 * correlation(o, v, 10)
    if k == "004":
        return -1 * ts_rank(rank(lo), 9)
    if k == "005":
        return rank(o - vwap.rolling(10).sum() / 10) * (-1 * rank(c - vwap).abs())
    if k == "009":
        d1 = delta(c, 1)
        inner = d1.where(d1.rolling(5).max() < 0, -1 * d1)
        return d1.where(0 < d1.rolling(5).min(), inner).where(d1.rolling(5).min().notna())
    if k == "012":
        return np.sign(delta(v, 1)) * (-1 * delta(c, 1))
    if k == "025":
        return rank(-1 * ret * f["adv20"] * vwap * (h - c))
    if k == "101":
        return (c - o) / ((h - lo) + 0.001)
    raise KeyError(k)


ALPHAS = ("002", "004", "005", "006", "009", "012", "025", "101")


@pytest.mark.parametrize("k", ALPHAS)
def test_20_3_alpha_preset_equals_the_papers_formula_in_pandas(k, frames):
    data, f = frames
    node = OmegaConf.load(ROOT / "conf" / "strategy" / f"alpha101_{k}.yaml")[f"alpha101_{k}"]
    strategy = build(node, f"strategy.alpha101_{k}", Strategy)
    ours = strategy.scores(data)
    ref = paper(f, k).to_numpy()
    defined = np.isfinite(ref) & np.isfinite(ours)
    # defined on the same cells (most of the panel), and there equal
    assert defined.sum() > 0.6 * ref.size, k
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(ref), err_msg=k)
    np.testing.assert_allclose(ours[defined], ref[defined], rtol=1e-10, atol=1e-10, err_msg=k)
    # and the preset trades it: long the top fifth, short the bottom fifth
    at = np.arange(strategy.warmup() + 5, data.n_bars, 21)
    sig = strategy.signal(data, at)
    assert (sig > 0).any() and (sig < 0).any() and set(np.unique(sig)) <= {-1.0, 0.0, 1.0}
