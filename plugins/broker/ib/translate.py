"""IB's messages in the broker-neutral vocabulary: a Trade as an ``OrderUpdate``, a Fill as an
``Execution``, an order error's text without the prefixes ib_async and IB put before it, and
the farm a status message names."""

from __future__ import annotations

import re

from pipeline.core.live_broker import Execution, OrderUpdate
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
