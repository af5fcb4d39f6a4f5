"""``python -m plugins.broker.ib.fake_gateway --port 4002``: the fake gateway for a dry run."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Optional

from plugins.broker.ib.fake_gateway.protocol import SERVER_VERSION
from plugins.broker.ib.fake_gateway.server import FakeGateway


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m plugins.broker.ib.fake_gateway",
                                description="A fake IB Gateway speaking the TWS API protocol "
                                            f"(server version {SERVER_VERSION}) for dry runs.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4002)
    p.add_argument("--account", default="DU1234567", help="managed account(s), comma-separated")
    p.add_argument("--cash", type=float, default=1_000_000.0)
    p.add_argument("--data", default="sp500", help="sp500 | stocks | synthetic | a CSV/Parquet path")
    p.add_argument("--history", type=int, default=600, help="daily bars served per symbol")
    p.add_argument("--position", action="append", default=[], metavar="SYMBOL=QTY")
    p.add_argument("--fill-delay", type=float, default=0.2, help="seconds between partial fills")
    p.add_argument("--partial", type=int, default=2, help="fills per order")
    p.add_argument("--ack-delay", type=float, default=0.0, help="seconds before an order is acknowledged")
    p.add_argument("--reject", action="append", default=[], metavar="SYMBOL",
                   help="reject orders for SYMBOL with error 201 (* for every symbol)")
    p.add_argument("--reject-next", type=int, default=0, help="reject the next N orders")
    p.add_argument("--drop-after-orders", type=int, default=None, help="drop the socket after N orders")
    p.add_argument("--outage", default=None, metavar="AT:SECONDS",
                   help="code 1100 at AT seconds after start, 1102 SECONDS later")
    p.add_argument("--reset", default=None, metavar="AT:SECONDS",
                   help="a nightly reset: close every socket at AT seconds, refuse connections for SECONDS")
    p.add_argument("--farm-broken", default=None, metavar="AT:SECONDS",
                   help="code 2103 at AT seconds after start, 2104 SECONDS later")
    p.add_argument("--read-only", action="store_true", help="the API's Read-Only mode: orders get error 321")
    p.add_argument("--hist-limit", default=None, metavar="N/SECONDS",
                   help="historical-data pacing: more than N requests in SECONDS is error 162")
    p.add_argument("--no-market-data", action="store_true",
                   help="refuse quotes with error 354, as for an account without market data")
    p.add_argument("--price", action="append", default=[], metavar="SYMBOL=PRICE",
                   help="set a symbol's price (a shock) after start")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")

    async def run() -> None:
        gw = FakeGateway(host=args.host, port=args.port, account=args.account, cash=args.cash,
                         data=args.data, history=args.history, fill_delay=args.fill_delay,
                         partial=args.partial, ack_delay=args.ack_delay,
                         positions={k: float(v) for k, v in (s.split("=") for s in args.position)})
        gw.reject_symbols = set(args.reject)
        gw.reject_next = args.reject_next
        gw.drop_after_orders = args.drop_after_orders
        gw.market_data(not args.no_market_data)
        gw.read_only(args.read_only)
        if args.hist_limit:
            n, window = args.hist_limit.split("/")
            gw.hist_limit = (int(n), float(window))
        await gw.start()
        for item in args.price:
            sym, value = item.split("=")
            await gw.set_price(sym, float(value))
        loop = asyncio.get_running_loop()
        if args.outage:
            at, seconds = (float(x) for x in args.outage.split(":"))
            loop.call_later(at, gw.start_outage, seconds)
        if args.reset:
            at, seconds = (float(x) for x in args.reset.split(":"))
            loop.call_later(at, gw.start_reset, seconds)
        if args.farm_broken:
            at, seconds = (float(x) for x in args.farm_broken.split(":"))
            loop.call_later(at, gw.farm, False)
            loop.call_later(at + seconds, gw.farm, True)
        print(f"fake IB gateway listening on {gw.host}:{gw.port} (server version {SERVER_VERSION}, "
              f"account {','.join(gw.accounts)}, {len(gw.instruments)} symbols, last bar "
              f"{gw.market.dates[-1]}); Ctrl-C to stop", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await gw.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"fake_gateway: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
