"""The simulated broker: fills child orders against the session's bars with a cost model."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from pipeline.contracts import Broker, ChildOrders, Fills, Orders, Session
from pipeline.market import MarketData


class SimBroker(Broker):
    """Fills at the session's reference price plus costs; every cost is on by default.

    Fill convention (one for the whole framework): a decision on the close of bar ``t`` trades
    in session ``t + 1``; a market order meets that session's open, or its close when the data
    has no opens (see ``pipeline.contracts.Session``). A symbol with no bar in the session
    does not fill; its order is reported unfilled.

    Costs per fill of ``q`` shares at reference price ``p``:

    - half-spread: the price moves ``half_spread_bps`` against the order;
    - market impact, the square-root law (Almgren et al. 2005; Toth et al. 2011):
      ``impact = impact_coef * sigma * sqrt(|q| / ADV)`` as a fraction of ``p``, with ``sigma``
      the daily volatility of log returns and ``ADV`` the average daily volume in shares,
      both over the ``window`` bars up to the decision (never the session itself). Data without
      volume uses ``adv_usd`` dollars of daily volume per symbol, an explicit assumption that
      the run reports. Fills before two returns of history exist carry no impact, and a
      symbol whose window traded no volume does not fill;
    - commission: ``commission_bps`` of notional plus ``commission_per_share`` per share, at
      least ``commission_min`` per order. Per-share commission is only meaningful on unadjusted
      prices; adjusted histories (like the bundled data) should use bps.

    ``price`` in the fills includes spread and impact; commission is reported apart.
    """

    rules = {
        "commission_bps": "[0, 1000]",
        "commission_per_share": "[0, inf)",
        "commission_min": "[0, inf)",
        "half_spread_bps": "[0, 1000]",
        "impact_coef": "[0, 100]",
        "window": "[2, inf)",
        "adv_usd": "(0, inf)",
        "lot_size": "(0, inf)",
    }

    def __init__(
        self,
        commission_bps: float = 1.0,
        commission_per_share: float = 0.0,
        commission_min: float = 1.0,
        half_spread_bps: float = 2.0,
        impact_coef: float = 0.5,
        window: int = 20,
        adv_usd: float = 5.0e8,
        lot_size: Optional[float] = None,
    ) -> None:
        self.commission_bps = commission_bps
        self.commission_per_share = commission_per_share
        self.commission_min = commission_min
        self.half_spread_bps = half_spread_bps
        self.impact_coef = impact_coef
        self.window = window
        self.adv_usd = adv_usd
        self.lot_size = lot_size

    def prepare(self, data: MarketData) -> None:
        import pandas as pd

        with np.errstate(invalid="ignore", divide="ignore"):
            logret = np.log(data.close[1:] / data.close[:-1])
        sigma = pd.DataFrame(logret).rolling(self.window, min_periods=2).std().to_numpy()
        # row t holds what is known at the close of bar t (the first bar has no return)
        sigma = np.nan_to_num(np.vstack([np.full((1, data.n_symbols), np.nan), sigma]), nan=0.0)
        # impact = scale * sqrt(size): size in shares over ADV in shares when the data has
        # volume, in notional over the assumed ADV in dollars when it has not
        self.size_in_shares_ = data.volume is not None
        if self.size_in_shares_:
            adv = pd.DataFrame(data.volume).rolling(self.window, min_periods=1).mean().to_numpy()
            with np.errstate(invalid="ignore", divide="ignore"):
                # NaN where the window traded nothing: such a market fills nothing
                self.impact_scale_ = np.where(adv > 0, self.impact_coef * sigma / np.sqrt(adv), np.nan)
        else:
            self.impact_scale_ = self.impact_coef * sigma / np.sqrt(self.adv_usd)

    def execute(self, orders: Orders, children: ChildOrders, session: Session) -> Fills:
        sym = orders.symbol[children.parent]
        ref = session.reference[sym]
        scale = self.impact_scale_[session.bar - 1][sym]
        if not math.isfinite(float((ref * scale).sum())):  # rare: drop what cannot fill
            ok = np.isfinite(ref * scale)
            sym, ref, scale, children = sym[ok], ref[ok], scale[ok], _subset(children, ok)
        qty = children.quantity
        absq = np.abs(qty)
        notional = absq * ref
        impact = scale * np.sqrt(absq if self.size_in_shares_ else notional)
        half_spread = self.half_spread_bps * 1e-4
        fee = notional * (self.commission_bps * 1e-4)
        if self.commission_per_share:
            fee += absq * self.commission_per_share
        return Fills(parent=children.parent, symbol=sym, quantity=qty,
                     price=ref + ref * np.copysign(half_spread + impact, qty),
                     commission=np.maximum(fee, self.commission_min),
                     spread_cost=notional * half_spread, impact_cost=notional * impact)


def _subset(children: ChildOrders, keep: np.ndarray) -> ChildOrders:
    return ChildOrders(parent=children.parent[keep], bin=children.bin[keep],
                       quantity=children.quantity[keep], limit=children.limit[keep])
