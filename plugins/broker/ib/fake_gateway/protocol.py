"""The TWS socket protocol as the fake gateway speaks it: framing, how TWS writes a field, its
time formats, IB's codes and texts, and the bodies of the messages that carry orders and
executions (at server version 176, in the order ``ib_async.decoder`` reads them; ``ref`` is the
orderRef as echoed, which ``Faults.drop_ref`` empties)."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import struct
import time
from typing import Any, Optional

from plugins.broker.ib.fake_gateway.state import NEW_YORK, UTC, GwExecution, GwOrder

SERVER_VERSION = 176

CONNECTIVITY = {
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
    2103: "Market data farm connection is broken:usfarm",
    2104: "Market data farm connection is OK:usfarm",
    2106: "HMDS data farm connection is OK:ushmds",
}
# service -> (code lost, code back, code idle but available on demand, IB's name for the farm)
FARM_CODES = {"market data": (2103, 2104, 2108, "Market data farm"),
              "historical data": (2105, 2106, 2107, "HMDS data farm"),
              "security definition": (2157, 2158, None, "Sec-def data farm")}
READ_ONLY = "Error validating request.-'bN' : cause - The API interface is currently in Read-Only mode."
ACCOUNT_TAGS = ("NetLiquidation", "TotalCashValue", "GrossPositionValue", "EquityWithLoanValue",
                "BuyingPower", "AvailableFunds", "ExcessLiquidity", "SettledCash")



def _s(value: Any) -> str:
    """A field as TWS writes it: booleans 1/0, None empty, floats without a trailing .0."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def frame(fields: list) -> bytes:
    body = "".join(_s(f) + "\0" for f in fields).encode()
    return struct.pack(">I", len(body)) + body


def ib_time(t: float) -> str:
    """Epoch seconds as ``20250102 15:30:00 UTC`` (what ib_async's parseIBDatetime reads)."""
    return dt.datetime.fromtimestamp(t, UTC).strftime("%Y%m%d %H:%M:%S UTC")


def parse_ib_time(text: str) -> Optional[float]:
    """``yyyymmdd hh:mm:ss [TZ]`` or ``yyyymmdd-hh:mm:ss`` (UTC) as epoch seconds; None if empty."""
    text = text.strip()
    if not text:
        return None
    from zoneinfo import ZoneInfo

    if "-" in text[:9]:
        day, clock = text.split("-", 1)
        zone: Any = UTC
    else:
        parts = text.split(" ")
        day, clock = parts[0], parts[1] if len(parts) > 1 else "00:00:00"
        zone = ZoneInfo(parts[2]) if len(parts) > 2 else ZoneInfo(NEW_YORK)
    stamp = dt.datetime.strptime(day + clock.strip(), "%Y%m%d%H:%M:%S").replace(tzinfo=zone)
    return stamp.timestamp()



async def read_frame(reader: asyncio.StreamReader) -> list[str]:
    size = struct.unpack(">I", await reader.readexactly(4))[0]
    body = await reader.readexactly(size)
    fields = body.decode(errors="backslashreplace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


def exec_fields(ex: GwExecution, req_id: int, ref: str) -> list:
    o = ex.order
    return [11, req_id, o.order_id, *o.inst.fields11("SMART"), ex.exec_id, ib_time(ex.time),
            o.account, o.inst.primary, "BOT" if o.action == "BUY" else "SLD", ex.shares, ex.price,
            o.perm_id, o.client_id, 0, ex.cum_qty, ex.avg_price, ref, "", "", "", 1]


def commission_fields(ex: GwExecution) -> list:
    return [59, 1, ex.exec_id, ex.commission, "USD", "", "", ""]


def open_order_fields(o: GwOrder, ref: str) -> list:
    """openOrder at version 176, in the order ``ib_async.decoder.Decoder.openOrder`` reads."""
    lmt = o.limit if o.limit is not None else 0.0
    good_after = ib_time(o.good_after) if o.good_after is not None else ""
    return [
        5, o.order_id, *o.inst.fields11("SMART"),
        o.action, o.quantity, o.order_type, lmt, o.aux or 0.0, o.tif, o.oca, o.account, "O", 0, ref,
        o.client_id, o.perm_id, 0, 0, 0.0, good_after, "", "", "", "",
        "",                                    # faProfile (version < 177)
        "", "", "", "", "", 0, "", "", 0, "", "", "", "", "", 0, 0, 0, 0, "", o.oca_type, 0, 0, "",
        o.parent_id, 0, "", 0, "", "",         # parentId, triggerMethod, volatility, deltaNeutral*
        0, 0, o.trail_stop, o.trail_percent,   # continuousUpdate, referencePriceType, trail*
        "", "", "",                            # basisPoints, basisPointsType, comboLegsDescrip
        0, 0, 0,                               # combo legs, order combo legs, smart combo params
        "", "", "",                            # scaleInitLevelSize, scaleSubsLevelSize, increment
        "",                                    # hedgeType
        0, "", "", 0, 0,                       # optOutSmartRouting .. notHeld, dnc present
        "",                                    # algoStrategy
        0, 0, o.status, "", "", "", "", "", "", "", "", "", "", "", "", "", "", 0, 0,
        0,                                     # conditions
        "", "", "", "", "", "", "", "", "", "", "", "", 0, 0, "", 0,
        "", 0, 0,                              # duration, postToAts, autoCancelParent
        "", "", "", "", "",                    # minTradeQty .. midOffsetAtHalf (>= 170)
    ]


def completed_order_fields(o: GwOrder, ref: str) -> list:
    """completedOrder at version 176, in the order ``Decoder.completedOrder`` reads."""
    lmt = o.limit if o.limit is not None else 0.0
    status = o.status
    return [
        101, *o.inst.fields11("SMART"),
        o.action, o.quantity, o.order_type, lmt, 0.0, o.tif, "", o.account, "O", 0, ref,
        o.perm_id, 0, 0, 0.0, "", "", "", "",
        "",                                    # faProfile (version < 177)
        "", "", "", "", "", 0, "", "", "", "", "", "", "", 0, 0, 0, "", 0, 0, "", 0, "", "",
        0, 0, "", "", "",                      # continuousUpdate .. comboLegsDescrip
        0, 0, 0,
        "", "", "",
        "",
        "", "", 0, 0,                          # clearingAccount, clearingIntent, notHeld, dnc
        "",
        0, status, 0, 0,
        0,
        "", "", "", 0, 0, "", o.filled, 0, 0, "", 0, 0, "",
        time.strftime("%Y%m%d %H:%M:%S", time.gmtime(o.completed_at or time.time())) + " UTC",
        o.reason or status,
        "", "", "", "", "",
    ]
