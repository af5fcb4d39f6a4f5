"""Issue 20.4: meta-labelling a primary strategy's entries with triple-barrier labels."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from pipeline.core.contracts import ExitRule, Strategy
from pipeline.core.estimators import average_true_range
from pipeline.core.market import MarketData
from pipeline.core.params import build
from plugins.exits.stop_loss import StopLoss
from plugins.exits.take_profit import TakeProfit
from plugins.exits.time_stop import TimeStop
from plugins.strategy.meta_label import MetaLabel

ROOT = Path(__file__).resolve().parents[3]
HOLD, EVERY = 5, 10


class EveryTenth(Strategy):
    """The primary: long each symbol for HOLD bars from every EVERY-th bar (staggered)."""

    def signal(self, data, at):
        at = np.asarray(at)
        phase = (at[:, None] + np.arange(data.n_symbols)[None, :]) % EVERY
        return (phase < HOLD).astype(float)


def planted(planted_signal: bool, t=1500, n=8, seed=11) -> MarketData:
    """Entries (bars where the primary opens) carry a volume spike in half the cases; with
    ``planted_signal`` those entries rise 1 % a bar for HOLD bars and the others fall 1 % a bar,
    so the primary's winners are exactly the spiked entries. Without it the path is noise."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, 0.004, (t, n))
    volume = rng.uniform(0.8, 1.2, (t, n)) * 1e5
    entry = ((np.arange(t)[:, None] + np.arange(n)[None, :]) % EVERY) == 0
    spike = entry & (rng.random((t, n)) < 0.5)
    volume[spike] *= 3.0
    if planted_signal:
        for s, j in zip(*np.nonzero(entry)):
            steps[s + 1: s + 1 + HOLD, j] += 0.01 if spike[s, j] else -0.01
    steps = steps[:t]
    close = 100 * np.exp(np.cumsum(steps, axis=0))
    prev = np.vstack([close[:1], close[:-1]])
    open_ = prev * np.exp(rng.normal(0, 0.001, (t, n)))
    high = np.maximum(open_, close) * 1.002
    low = np.minimum(open_, close) * 0.998
    index = pd.date_range("2001-01-01", periods=t, freq="B", tz="America/New_York") + pd.Timedelta(hours=16)
    return MarketData(index=index, symbols=tuple(f"S{i}" for i in range(n)), close=close,
                      open=open_, high=high, low=low, volume=volume)


def meta(**kw) -> MetaLabel:
    params = dict(primary=EveryTenth(), barriers=[TakeProfit(pct=0.03), StopLoss(pct=0.03),
                                                  TimeStop(bars=HOLD)],
                  features={"volume_ratio": "volume / ts_mean(volume, 20)"}, refit=63,
                  min_train=40, embargo=2)
    params.update(kw)
    return MetaLabel(**params)


def precision(strategy: MetaLabel, data: MarketData) -> tuple[float, float, int]:
    """The primary's precision and the meta-labelled one, over the entries after the first fit."""
    ev = strategy.events(data)
    proba = strategy.probabilities(data, ev)
    judged = np.isfinite(proba) & (ev["label"] >= 0)
    taken = judged & (proba >= strategy.threshold)
    return ev["label"][judged].mean(), ev["label"][taken].mean(), int(taken.sum())


def test_20_4_meta_labelling_raises_precision_on_a_planted_signal():
    data = planted(True)
    primary, metal, taken = precision(meta(), data)
    assert 0.35 < primary < 0.65, primary
    assert metal > 0.9 and metal > primary + 0.3, (primary, metal)
    assert taken > 100


def test_20_4_meta_labelling_does_not_raise_precision_on_noise():
    data = planted(False)
    primary, metal, taken = precision(meta(), data)
    assert metal < primary + 0.08, (primary, metal, taken)


def test_20_4_no_label_reads_data_after_its_barrier_time():
    data = planted(True, t=400)
    strategy = meta()
    ev = strategy.events(data)
    done = np.flatnonzero(ev["label"] >= 0)
    assert done.size > 100
    for i in done[:: done.size // 15]:
        e = int(ev["exit_bar"][i])
        assert ev["bar"][i] < e <= ev["bar"][i] + HOLD
        cut = strategy.events(data.view(e + 1))
        k = np.flatnonzero((cut["bar"] == ev["bar"][i]) & (cut["col"] == ev["col"][i]))
        assert k.size == 1 and cut["label"][k[0]] == ev["label"][i]
        assert cut["exit"][k[0]] == ev["exit"][i] and cut["exit_bar"][k[0]] == e
        shorter = strategy.events(data.view(e))       # one bar less: not labelled yet
        k = np.flatnonzero((shorter["bar"] == ev["bar"][i]) & (shorter["col"] == ev["col"][i]))
        assert k.size == 0 or shorter["label"][k[0]] == -1


def test_20_4_labels_are_the_exit_rules_fills_including_atr_scaled_barriers():
    data = planted(True, t=300)
    strategy = meta(barriers=[TakeProfit(atr=1.5), StopLoss(atr=1.0), TimeStop(bars=HOLD)])
    ev = strategy.events(data)
    atr = average_true_range(data.high, data.low, data.close, 14)
    ok = ev["label"] >= 0
    for i in np.flatnonzero(ok)[:60]:
        s, j, entry = ev["bar"][i], ev["col"][i], ev["entry"][i]
        assert entry == data.open[s + 1, j]
        path = slice(s + 1, ev["exit_bar"][i] + 1)
        if not np.isfinite(atr[s, j]):   # no ATR yet at the decision: the time barrier only
            assert ev["exit_bar"][i] == s + HOLD
            continue
        up, down = entry + 1.5 * atr[s, j], entry - 1.0 * atr[s, j]
        hi, lo = data.high[path, j], data.low[path, j]
        e = ev["exit"][i]
        if e not in (up, down):  # neither barrier touched: the time stop's close
            assert ev["exit_bar"][i] == s + HOLD and e == data.close[s + HOLD, j]
            assert (hi < up).all() and (lo > down).all()
        assert ev["label"][i] == int(e > entry)


def test_20_4_signal_takes_or_sizes_the_primary_and_is_causal(causal):
    data = planted(True, t=700)
    strategy = meta()
    at = np.arange(strategy.warmup(), data.n_bars)
    took = causal(meta, data, at, checks=6)
    primary = EveryTenth().signal(data, at)
    assert ((took == 0) | (took == primary)).all() and 0 < took.sum() < primary.sum()
    sized = meta(sizing="size", threshold=0.0).signal(data, at)
    assert ((sized >= 0) & (sized <= primary)).all() and (sized[(sized > 0)] < 1).all()


def test_20_4_the_preset_builds_its_barriers_as_exit_rules(sp500):
    node = OmegaConf.load(ROOT / "conf" / "strategy" / "meta_label.yaml")["meta_label"]
    strategy = build(node, "strategy.meta_label", Strategy, seed=7)
    assert all(isinstance(b, ExitRule) for b in strategy.barriers) and strategy.horizon_ == 10
    data = sp500.select(start="2003-01-01", end="2008-12-31")
    ev = strategy.events(data)
    assert (ev["label"] >= 0).sum() > 100
    with pytest.raises(ValueError, match="time barrier"):
        MetaLabel(barriers=[TakeProfit(pct=0.05)])
    with pytest.raises(ValueError, match="list of exit rules"):
        MetaLabel(barriers=[{"pct": 0.05}])
