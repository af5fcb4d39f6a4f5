"""The simulated exchange of order-book runs: latency, queue position and fees (``broker=lob``).

Its parameters are the exchange model's (``pipeline.core.lob.ExchangeModel`` documents them);
the event engine (``pipeline/lob/``) fills orders with them. hftbacktest's names for the same
choices: ``risk_averse`` is its ``RiskAdverseQueueModel``, ``power_prob`` its
``PowerProbQueueModel(n)``; the constant latencies its ``constant_order_latency`` (entry and
response) and a feed delay added to every event's local timestamp.
"""

from __future__ import annotations

from typing import Literal

from pipeline.core.lob import ExchangeModel


class LOBExchange(ExchangeModel):
    """Fills event strategies' limit and market orders against the replayed book.

    Every resting limit order joins the back of its price level and advances as the volume
    ahead trades (``queue=risk_averse``) or also as it is cancelled, with a probability that
    grows with the order's position (``queue=power_prob``, exponent ``queue_power``); it fills
    partially when a trade is larger than the volume ahead (``partial_fills=false``: whole),
    whole when the market trades through or crosses its price. Latencies in seconds; ``latency=lognormal`` draws each order's
    entry and response latency around the configured value (log-dispersion ``latency_sigma``,
    mean preserved, from the run's seed). Fees per side: basis points of notional plus per
    share, negative for a rebate (e.g. ``maker_fee_per_share=-0.002``).
    """

    rules = {"feed_latency": "[0, inf)", "entry_latency": "[0, inf)", "response_latency": "[0, inf)",
             "latency_sigma": "[0, inf)", "queue_power": "(0, inf)", "tick": "(0, inf)",
             "max_orders": "[1, inf)"}

    def __init__(self, feed_latency: float = 0.001, entry_latency: float = 0.001,
                 response_latency: float = 0.001, latency: Literal["constant", "lognormal"] = "constant",
                 latency_sigma: float = 0.5, queue: Literal["risk_averse", "power_prob"] = "risk_averse",
                 queue_power: float = 2.0, partial_fills: bool = True, maker_fee_bps: float = -0.2, taker_fee_bps: float = 0.3,
                 maker_fee_per_share: float = 0.0, taker_fee_per_share: float = 0.0,
                 tick: float = 0.01, max_orders: int = 64) -> None:
        self.feed_latency = feed_latency
        self.entry_latency = entry_latency
        self.response_latency = response_latency
        self.latency = latency
        self.latency_sigma = latency_sigma
        self.queue = queue
        self.queue_power = queue_power
        self.partial_fills = partial_fills
        self.maker_fee_bps = maker_fee_bps
        self.taker_fee_bps = taker_fee_bps
        self.maker_fee_per_share = maker_fee_per_share
        self.taker_fee_per_share = taker_fee_per_share
        self.tick = tick
        self.max_orders = max_orders
