"""A fake IB Gateway: the TWS socket protocol at server version 176, for tests and dry runs.
A test double, not a plugin: no entry point names it and the live order path never imports it.

    python -m plugins.broker.ib.fake_gateway --port 4002          # then, in another shell:
    python run.py mode=paper broker=ib broker.port=4002 mode.run_once=true

The real ``ib_async`` client connects to it unchanged: the handshake (``API\\0`` + version
range, answered with version 176 and the time), ``startApi``, ``nextValidId`` and
``managedAccounts``; positions, account values, portfolio and account summary; contract details;
daily historical bars; market-data snapshots; executions and commission reports; open and
completed orders; current time; and the order lifecycle: ``placeOrder`` is answered with
openOrder/orderStatus PreSubmitted, then Submitted, then one or more partial fills (execDetails,
orderStatus, commissionReport), the last with orderStatus and openOrder Filled. Limit orders
that are not marketable rest until cancelled. ``cancelOrder`` answers error 202 and
orderStatus Cancelled; rejects are error 201; an order id used twice is error 103; a client
id already connected is error 326.

Each message is built in the order ``ib_async.decoder`` reads it at version 176 (openOrder,
completedOrder and contractDetails follow ``Decoder.openOrder``/``completedOrder``/
``contractDetails`` field by field).

The gateway is the broker's side of the world and keeps its state (cash, positions, orders,
executions, next order id) for the life of the process, across client disconnects: orders keep
working and filling while their client is away, as they do at IB, and a client that reconnects
with the same client id gets their updates again.

Market: the bundled ``sp500`` closes (or ``stocks``, ``synthetic``, or a CSV/Parquet file read
by ``plugins/data/csv.py``), the last ``history`` bars, re-stamped onto weekdays so that the
last bar is the last completed session (16:00 New York) before now. Orders fill at the last
close (``set_price`` moves it). Closes-only data gets open = previous close, a 0.2 % range and
a volume of 200 M USD a day.

Faults, settable from tests (methods, thread-safe through ``call``) and from the command line:
``drop`` (close client sockets), ``drop_after_orders`` (drop the socket right after the Nth
order), ``outage`` (code 1100, then 1101 or 1102; no fills and no new orders meanwhile),
``farm`` (2103 / 2104), ``farm_status`` (one farm by name: market data 2103 / 2104 / 2108,
historical 2105 / 2106 / 2107, security definitions 2157 / 2158), ``market_data`` (off: quotes
are refused with error 354, as for an account without a market-data subscription), ``read_only``
(the API's Read-Only mode: every order is refused with error 321), ``ack_delay`` (seconds before
an order is acknowledged),
``reject_next`` / ``reject_symbols`` (error 201), ``hist_limit`` (historical-data pacing: more
than N requests in a window is error 162), ``set_price`` (a price shock). ``gw.faults`` holds
the faults of a misbehaving gateway (``Faults``): a stall with the socket open, an outage during
which resting orders fill, no orderRef echo, orders reported only late after a reconnect.

The parts: ``protocol`` (framing, field encoding, the message bodies, IB's codes and texts),
``state`` (instruments, orders, executions, the market), ``orders`` (the order lifecycle),
``faults`` (``Faults``), ``server`` (``FakeGateway``: sockets, requests, the controls above),
``__main__`` (the command line).
"""

from plugins.broker.ib.fake_gateway.faults import Faults
from plugins.broker.ib.fake_gateway.protocol import SERVER_VERSION, frame
from plugins.broker.ib.fake_gateway.server import FakeGateway
from plugins.broker.ib.fake_gateway.state import GwOrder, load_market

__all__ = ["FakeGateway", "Faults", "GwOrder", "SERVER_VERSION", "frame", "load_market"]
