"""The conf/risk presets build through the runner, are feasible together, and hold their
limits on real data (sp500 returns and symbols)."""

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from pipeline.app import registry
from pipeline.core.contracts import Book, RiskContext
from pipeline.app.runner import build_risk

CONF = Path(__file__).resolve().parents[3] / "conf" / "risk"
PRESETS = sorted(p.stem for p in CONF.glob("*.yaml"))


@pytest.fixture
def risk_plugins(monkeypatch):
    """Load constraints by name from plugins/risk when not (yet) registered by entry point."""
    import importlib

    def load(stage, name):
        if stage == "risk" and name not in registry.registered()["risk"]:
            module = importlib.import_module(f"plugins.risk.{name}")
            from pipeline.core.contracts import Constraint
            return next(c for c in vars(module).values() if isinstance(c, type)
                        and issubclass(c, Constraint) and c.__module__ == module.__name__)
        return original(stage, name)

    original = registry.load
    monkeypatch.setattr(registry, "load", load)


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_builds_and_holds_on_sp500(preset, risk_plugins, sp500):
    constraints = build_risk(OmegaConf.load(CONF / f"{preset}.yaml"))
    for _, c in constraints:
        if hasattr(c, "check_with"):
            c.check_with(constraints)
    rng = np.random.default_rng(0)
    at = np.arange(300, sp500.n_bars - 1, 21)
    n = sp500.n_symbols
    picks = rng.permuted(np.tile(np.r_[np.ones(5), np.zeros(n - 5)], (at.size, 1)), axis=1)
    side = -1.0 if preset == "long_short" else 1.0
    w = picks / 5 * np.where(rng.random(picks.shape) < 0.5, 1.0, side)
    ctx = RiskContext(returns=sp500.returns, at=at, symbols=sp500.symbols)
    for _, c in constraints:
        if not c.stateful:
            w, bound = c.apply(w, ctx)
    assert np.isfinite(w).all()
    limits = dict((name, c) for name, c in constraints)
    if "max_weight" in limits:
        assert np.abs(w).max() <= limits["max_weight"].limit + 1e-12
    if "max_gross_leverage" in limits:
        assert np.abs(w).sum(axis=1).max() <= limits["max_gross_leverage"].limit + 1e-12
    if "max_net_leverage" in limits:
        assert np.abs(w.sum(axis=1)).max() <= limits["max_net_leverage"].limit + 1e-12
    if "long_only" in limits:
        assert w.min() >= 0
    current, equity, peak = np.zeros(n), 1.0, 1.0
    for k, t in enumerate(at):
        equity *= 1 + rng.normal(0, 0.05)
        peak = max(peak, equity)
        book = Book(bar=int(t), equity=equity, peak_equity=peak, weights=current,
                    prices=sp500.close[t])
        target = w[k]
        for _, c in constraints:
            if c.stateful:
                target, _ = c.apply_step(target, book)
        assert np.isfinite(target).all()
        current = target
