"""IB's messages in the broker-neutral vocabulary: a Trade as an ``OrderUpdate``, a Fill as an
``Execution``, a ``LiveOrder`` as IB's ``Order`` (``ib_order``), an order error's text without
the prefixes ib_async and IB put before it, and the farm a status message names."""

from __future__ import annotations

import datetime as dt
import math
import re

from pipeline.core.live_broker import Execution, LiveOrder, OrderUpdate
from pipeline.core.orders import OrderError, OrderType, TimeInForce
from plugins.broker.ib import codes
from plugins.broker.ib.codes import CANCEL_REQUEST_ERRORS, READ_ONLY

LOG_PREFIX = re.compile(r"^(?:Error|Warning) -?\d+, reqId -?\d+: ")


def order_update(trade) -> OrderUpdate:
    status = trade.orderStatus
    code, message = 0, ""
    for entry in reversed(trade.log):
        if entry.errorCode and entry.errorCode not in CANCEL_REQUEST_ERRORS:
            code, message = entry.errorCode, reason(entry.message)
            break
    state = status.status
    if state == "ValidationError" and code == 321 and READ_ONLY in message.lower():
        state = "Inactive"  # ib_async keeps it as a warning; the gateway never took the order
    filled = float(status.filled or 0)
    completed = trade.order.filledQuantity  # a completed order reports it here, not in its status
    if not filled and completed is not None and 0 < float(completed) < 1e300:
        filled = float(completed)
    return OrderUpdate(ref=trade.order.orderRef, status=codes.state(state, int(code or 0), filled),
                       filled=filled, remaining=float(status.remaining or 0),
                       avg_price=float(status.avgFillPrice or 0),
                       order_id=trade.order.orderId or None, perm_id=trade.order.permId or None,
                       error_code=int(code or 0), message=message, client_id=trade.order.clientId,
                       broker_status=state)


def execution(fill) -> Execution:
    ex = fill.execution
    sign = 1.0 if ex.side in ("BOT", "BUY") else -1.0
    report = fill.commissionReport
    commission = float(report.commission) if report is not None and report.execId else None
    when = ex.time.timestamp() if hasattr(ex.time, "timestamp") else float(ex.time or 0)
    return Execution(exec_id=ex.execId, ref=ex.orderRef, symbol=fill.contract.symbol,
                     quantity=sign * float(ex.shares), price=float(ex.price), time=when,
                     commission=commission, currency=report.currency if report is not None else "",
                     order_id=ex.orderId or None, perm_id=ex.permId or None)


def reason(text: str) -> str:
    """IB's text of an order error without the prefixes ib_async's log and IB put before it."""
    text = LOG_PREFIX.sub("", " ".join(text.split())).split(", contract: ")[0]
    text = text.split(" : cause - ", 1)[-1]  # 321: "Error validating request.-'bN' : cause - ..."
    for prefix, bare in (("Order rejected - reason:", "Order rejected"),
                         ("Order Canceled - reason:", "Order Canceled")):
        if text.startswith(prefix):
            text = text[len(prefix):].strip() or bare
    return text


def farm_name(message: str) -> str:
    """The farm a status message is about: ``...is broken:usfarm``, ``...upon demand.ushmds``."""
    for sep in (":", "demand."):
        _, found, tail = message.strip().rpartition(sep)
        if found and tail.strip():
            return tail.strip()
    return ""


# the neutral order types as IB's orderType (a market-on-open is a market order with tif OPG)
IB_TYPES = {OrderType.MARKET: "MKT", OrderType.LIMIT: "LMT", OrderType.STOP: "STP",
            OrderType.STOP_LIMIT: "STP LMT", OrderType.TRAILING_STOP: "TRAIL",
            OrderType.MARKET_ON_OPEN: "MKT", OrderType.MARKET_ON_CLOSE: "MOC",
            OrderType.LIMIT_ON_CLOSE: "LOC"}
# ocaType 1: a fill of one member cancels the others (the first exit of a position wins)
OCA_CANCEL = 1


def ib_order(order: LiveOrder, account: str):
    """IB's ``Order`` for ``order``: STP/STP LMT with ``auxPrice`` (the trigger), TRAIL with
    ``auxPrice`` (an amount) or ``trailingPercent`` (IB's unit is percent) and
    ``trailStopPrice`` (where it starts: the terms' ``stop``), MOC/LOC, MOO as MKT with tif OPG;
    ``ocaGroup``, ``parentId``, ``transmit`` and ``goodAfterTime`` as given. The terms are
    checked again here, and every price IB gets: nothing NaN, infinite, zero or negative leaves."""
    from ib_async import Order

    terms = order.order_terms()
    terms.check(order.symbol, order.quantity)
    tif = "OPG" if terms.type is OrderType.MARKET_ON_OPEN else \
        ("GTC" if terms.tif is TimeInForce.GTC else order.tif or "DAY")
    ib = Order(orderId=order.order_id or 0, action="BUY" if order.quantity > 0 else "SELL",
               totalQuantity=abs(order.quantity), orderType=IB_TYPES[terms.type], tif=tif,
               orderRef=order.ref, account=account, transmit=bool(order.transmit), outsideRth=False)
    prices = {}
    if terms.limit is not None:
        prices["lmtPrice"] = terms.limit
    if terms.type in (OrderType.STOP, OrderType.STOP_LIMIT):
        prices["auxPrice"] = terms.stop
    if terms.type is OrderType.TRAILING_STOP:
        if terms.trail_amount is not None:
            prices["auxPrice"] = terms.trail_amount
        else:
            prices["trailingPercent"] = 100.0 * terms.trail_percent
        if terms.stop is not None:
            prices["trailStopPrice"] = terms.stop
    for name, value in prices.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise OrderError(f"{terms.type.value} order for {order.symbol}: IB {name} {value!r} "
                             f"must be a finite positive number")
        setattr(ib, name, float(value))
    if terms.oca:
        ib.ocaGroup, ib.ocaType = terms.oca, OCA_CANCEL
    if order.parent_id:
        ib.parentId = int(order.parent_id)
    if order.good_after is not None:
        when = dt.datetime.fromtimestamp(float(order.good_after), dt.timezone.utc)
        ib.goodAfterTime = when.strftime("%Y%m%d %H:%M:%S UTC")
    return ib
