"""Return attribution: each bar's portfolio return split by asset and by sleeve.

Per asset ``i`` and bar ``t``: ``pnl[t, i] = v[t, i] - v[t-1, i] - flow[t, i]`` where ``v`` is
the marked value of the holding and ``flow`` the cash paid for it in fills at ``t`` (spread
and impact are inside fill prices, so they land on the asset). Commissions are their own
column, and so is financing (interest and borrow fees, ``Ledger.financing``). Hence, exactly,
``r[t] = (sum_i pnl[t, i] - commission[t] - financing[t]) / E[t-1]``.

Per sleeve: an asset's P&L is split by the sleeves' shares of the last traded target,
``u[s] * w_s[i] / sum_s' u[s'] * w_s'[i]`` (before risk constraints, which scale every
sleeve's part alike); where sleeves' targets cancel out (a zero sum) the split is equal.
The sleeve columns plus commission and financing therefore also sum to the portfolio return.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.backtest.engine import Ledger
from pipeline.core.market import forward_filled


def attribution(ledger: Ledger) -> pd.DataFrame:
    data, start = ledger.data, ledger.start
    n_rec = ledger.equity.size
    value = ledger.positions * forward_filled(data.close)[start:]
    f = ledger.fills
    rows = f["bar"].astype(np.int64) - start
    sym = f["symbol"].astype(np.int64)
    flow = np.zeros_like(value)
    np.add.at(flow, (rows, sym), f["quantity"] * f["price"])
    commission = np.bincount(rows, weights=f["commission"], minlength=n_rec)
    pnl = np.diff(value, axis=0, prepend=np.zeros((1, value.shape[1]))) - flow
    before = np.append(ledger.equity[0], ledger.equity[:-1])
    asset = pnl / before[:, None]

    plan = ledger.plan
    sleeve_pnl = np.zeros((n_rec, len(plan.names)))
    if ledger.traded.size:
        k = ledger.traded
        parts = plan.sleeve_weights[k][:, :, None] * plan.asset_weights[:, k, :].transpose(1, 0, 2)
        total = parts.sum(axis=1, keepdims=True)
        equal = np.full_like(parts, 1.0 / len(plan.names))
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = np.where(np.abs(total) > 1e-12, parts / total, equal)
        # positions at bar t come from the last decision filled at or before t
        which = np.searchsorted(ledger.decisions + 1, np.arange(start, start + n_rec), side="right") - 1
        live = which >= 0
        sleeve_pnl[live] = np.einsum("tsn,tn->ts", shares[which[live]], pnl[live])
    # 0 - x rather than -x: +0 where nothing accrued, which an all-zero column keeps when it is
    # read back from the CSV (as integers); -0 would not
    charged = 0.0 - sum(ledger.financing.values())
    frame = {"portfolio": np.append(0.0, ledger.equity[1:] / ledger.equity[:-1] - 1.0),
             "commission": -commission / before, "financing": charged / before}
    frame.update({f"asset:{s}": asset[:, j] for j, s in enumerate(data.symbols)})
    frame.update({f"sleeve:{n}": sleeve_pnl[:, j] / before for j, n in enumerate(plan.names)})
    return pd.DataFrame(frame, index=pd.Index(data.labels[start:], name="time"))


def sleeves(ledger: Ledger) -> pd.DataFrame:
    """Each sleeve's frictionless equity (from 1 at the first decision) and portfolio weight."""
    plan, start = ledger.plan, ledger.start
    growth = np.cumprod(1.0 + np.nan_to_num(plan.sleeve_returns[start:]), axis=0)
    held = np.searchsorted(ledger.decisions, np.arange(start, ledger.data.n_bars), side="right") - 1
    weights = np.zeros((held.size, len(plan.names)))
    if ledger.traded.size:  # a run that never traded has no sleeve weights to show
        weights = np.where(held[:, None] >= 0, plan.sleeve_weights[ledger.traded][np.maximum(held, 0)], 0.0)
    frame = {f"equity:{n}": growth[:, j] for j, n in enumerate(plan.names)}
    frame.update({f"weight:{n}": weights[:, j] for j, n in enumerate(plan.names)})
    return pd.DataFrame(frame, index=pd.Index(ledger.data.labels[start:], name="time"))
