"""Any skfolio optimiser as an allocator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import numpy as np

from pipeline.core.errors import ConfigError
from pipeline.core.params import Window
from plugins.allocation._common import WINDOW_RULES, WindowAllocator, check_history


class SkfolioAllocator(WindowAllocator):
    """Fits a skfolio optimiser on each decision's window and returns its ``weights_``.

    ``optimizer`` is a config node with ``_target_`` naming any skfolio optimiser (or any
    estimator with ``fit(X)`` and a 1-D ``weights_``), with its parameters, e.g.::

        optimizer:
          _target_: skfolio.optimization.MeanRisk
          objective_function: {_target_: skfolio.optimization.ObjectiveFunction, _args_: [maximize_ratio]}
          risk_measure: {_target_: skfolio.measures.RiskMeasure, _args_: [cvar]}

    (enum parameters are built with ``_target_`` + ``_args_`` from their value), or an
    already built estimator; ``None`` is ``MeanRisk()``, long-only minimum variance. The
    estimator is cloned (``sklearn.base.clone``) and fitted per decision on the position
    returns (``r * side``, NaN rows dropped), so its long weights are weights in each
    position's direction; the signs are put back. Weights are skfolio's, unchanged: they sum
    to what its budget constraint says (1 by default), and may oppose a side if its bounds
    allow negative weights.

    Too little history gives equal weight and constant columns get 0, as for every window
    allocator. A failed fit raises skfolio's error; configure skfolio's own ``fallback``
    (e.g. ``fallback: {_target_: skfolio.optimization.EqualWeighted}``) to continue instead.
    """

    rules = {k: WINDOW_RULES[k] for k in ("lookback", "min_history")}

    def __init__(self, optimizer: Any = None, lookback: Window = 252, min_history: Window = 60) -> None:
        check_history(lookback, min_history)
        self.optimizer = optimizer
        self.lookback = lookback
        self.min_history = min_history

    def _template(self) -> Any:
        """The configured estimator, built once per ``optimizer`` value (building a config
        node through Hydra costs far more than cloning)."""
        built = self.__dict__.get("_built")
        if built is None or built[0] is not self.optimizer:
            built = (self.optimizer, _build(self.optimizer))
            self.__dict__["_built"] = built
        return built[1]

    def _position_weights(self, P: np.ndarray, prev: Optional[np.ndarray],
                          budgets: Optional[np.ndarray]) -> np.ndarray:
        from sklearn.base import clone

        est = clone(self._template())
        est.fit(P)
        w = getattr(est, "weights_", None)
        w = None if w is None else np.asarray(w, dtype=np.float64)
        if w is None or w.shape != (P.shape[1],) or not np.isfinite(w).all():
            raise ConfigError(f"allocation.optimizer {type(est).__name__} returned no usable "
                              f"weights ({w!r}) on a window of {P.shape[0]} rows x "
                              f"{P.shape[1]} columns; set its fallback (e.g. fallback: "
                              f"{{_target_: skfolio.optimization.EqualWeighted}}) or pick "
                              f"another optimiser")
        return w


def _build(optimizer: Any) -> Any:
    if optimizer is None:
        from skfolio.optimization import MeanRisk

        return MeanRisk()
    if isinstance(optimizer, Mapping):
        if "_target_" not in optimizer:
            raise ConfigError("allocation.optimizer needs a _target_ naming a skfolio "
                              "optimiser, e.g. skfolio.optimization.MeanRisk")
        from hydra.utils import instantiate

        return instantiate(optimizer, _convert_="all")
    if not hasattr(optimizer, "fit"):
        raise ConfigError(f"allocation.optimizer={optimizer!r} is not an estimator: give a "
                          f"node with _target_ naming a skfolio optimiser")
    return optimizer
