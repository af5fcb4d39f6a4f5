"""The fake gateway speaks TWS protocol 176 well enough for the real ib_async client: every
message below is parsed by ib_async's own decoder into its own objects (no mocks)."""

from __future__ import annotations

import asyncio
import math
import time

import pytest
from ib_async import IB, ExecutionFilter, LimitOrder, MarketOrder, Stock
from ib_async.decoder import Decoder

from plugins.broker.ib.fake_gateway import SERVER_VERSION, FakeGateway, frame

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def run(coro, timeout: float = 20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def connect(gw: FakeGateway, client_id: int = 5) -> IB:
    ib = IB()
    await ib.connectAsync("127.0.0.1", gw.port, clientId=client_id, timeout=5)
    return ib


async def until(predicate, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def test_handshake_accounts_positions_and_account_values(market):
    gw = FakeGateway(market=market, account="DU111,DU222", positions={"AAPL": 10}).start_in_thread()
    try:
        async def main():
            ib = await connect(gw)
            assert ib.client.serverVersion() == SERVER_VERSION
            assert ib.managedAccounts() == ["DU111", "DU222"]
            positions = await ib.reqPositionsAsync()
            assert [(p.account, p.contract.symbol, p.position) for p in positions] == [("DU111", "AAPL", 10.0)]
            summary = await ib.accountSummaryAsync("DU111")
            nlv = {v.tag: float(v.value) for v in summary if v.tag in ("NetLiquidation", "TotalCashValue")}
            assert nlv["NetLiquidation"] == pytest.approx(1_000_000.0)
            assert nlv["TotalCashValue"] == pytest.approx(1_000_000.0 - 10 * gw.prices["AAPL"])
            assert (await ib.reqCurrentTimeAsync()).timestamp() == pytest.approx(time.time(), abs=5)
            ib.disconnect()
        run(main())
    finally:
        gw.stop_thread()


def test_contract_details_qualify_and_unknown_symbol(gateway):
    async def main():
        ib = await connect(gateway)
        aapl, nothing = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"), Stock("ZZZZ", "SMART", "USD"))
        assert aapl.conId > 0 and aapl.primaryExchange == "NASDAQ" and nothing is None
        [details] = await ib.reqContractDetailsAsync(Stock("KO", "SMART", "USD"))
        assert details.minTick == 0.01 and details.timeZoneId == "US/Eastern" and details.stockType == "COMMON"
        ib.disconnect()
    run(main())


def test_historical_bars_end_at_the_last_finished_session(gateway, market):
    async def main():
        ib = await connect(gateway)
        bars = await ib.reqHistoricalDataAsync(Stock("MSFT", "SMART", "USD"), "", "30 D", "1 day",
                                               "ADJUSTED_LAST", True)
        assert 18 <= len(bars) <= 23
        assert bars[-1].date == market.dates[-1] and bars[-1].close == pytest.approx(gateway.prices["MSFT"])
        assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in bars)
        ib.disconnect()
    run(main())


def test_market_order_lifecycle_with_partial_fills_and_commissions(gateway):
    gateway.partial = 3

    async def main():
        ib = await connect(gateway)
        [c] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        order = MarketOrder("BUY", 10)
        order.orderRef = "rt:test:1:AAPL:0"
        trade = ib.placeOrder(c, order)
        await until(lambda: trade.isDone() and len(trade.fills) == 3
                    and all(f.commissionReport.execId for f in trade.fills))
        statuses = [e.status for e in trade.log]
        assert statuses[:3] == ["PendingSubmit", "PreSubmitted", "Submitted"] and statuses[-1] == "Filled"
        assert [f.execution.shares for f in trade.fills] == [4.0, 3.0, 3.0]
        assert {f.execution.orderRef for f in trade.fills} == {"rt:test:1:AAPL:0"}
        assert trade.orderStatus.filled == 10 and trade.orderStatus.remaining == 0
        assert trade.orderStatus.avgFillPrice == pytest.approx(gateway.prices["AAPL"])
        assert sum(f.commissionReport.commission for f in trade.fills) == pytest.approx(1.0 + 6 * 0.005)
        assert (await ib.reqPositionsAsync())[0].position == 10
        ib.disconnect()
    run(main())


def test_limit_order_rests_then_cancel_then_reject_and_duplicate_id(gateway):
    gateway.reject_symbols = {"KO"}

    async def main():
        ib = await connect(gateway)
        aapl, ko = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"), Stock("KO", "SMART", "USD"))
        resting = ib.placeOrder(aapl, LimitOrder("BUY", 5, 1.0, orderRef="rest"))
        await until(lambda: resting.orderStatus.status == "Submitted")
        await asyncio.sleep(0.1)
        assert not resting.fills
        ib.cancelOrder(resting.order)
        await until(lambda: resting.orderStatus.status == "Cancelled")
        assert resting.log[-1].errorCode == 202
        rejected = ib.placeOrder(ko, MarketOrder("SELL", 3, orderRef="rej"))
        await until(lambda: rejected.isDone())
        assert rejected.orderStatus.status == "Cancelled" and any(e.errorCode == 201 for e in rejected.log)
        errors = []
        ib.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
        ib.client.placeOrder(resting.order.orderId, aapl, MarketOrder("BUY", 1))  # an id used before
        await until(lambda: 103 in errors)
        ib.disconnect()
    run(main())


def test_state_survives_reconnects_executions_open_and_completed_orders(gateway):
    async def main():
        ib = await connect(gateway)
        aapl, msft = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"), Stock("MSFT", "SMART", "USD"))
        filled = ib.placeOrder(aapl, MarketOrder("BUY", 7, orderRef="a"))
        ib.placeOrder(msft, LimitOrder("SELL", 2, 1e6, orderRef="b"))
        await until(lambda: filled.isDone())
        ib.disconnect()
        again = await connect(gateway)  # same client id: its orders and fills come back
        by_ref = {t.order.orderRef: t.orderStatus.status for t in again.trades()}
        assert by_ref == {"a": "Filled", "b": "Submitted"}
        fills = await again.reqExecutionsAsync(ExecutionFilter(clientId=5))
        assert sum(f.execution.shares for f in fills) == 7 and {f.execution.orderRef for f in fills} == {"a"}
        assert all(again.wrapper.fills[f.execution.execId].commissionReport.execId for f in fills)
        future = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(time.time() + 60))
        assert await again.reqExecutionsAsync(ExecutionFilter(time=future)) == []
        other = await connect(gateway, client_id=9)  # another client: no open order, no fill of it
        assert other.openTrades() == [] and other.fills() == []
        assert [t.order.orderRef for t in await other.reqAllOpenOrdersAsync()] == ["b"]
        other.disconnect()
        again.disconnect()
    run(main())


def test_client_id_in_use_is_refused(gateway):
    async def main():
        first = await connect(gateway, client_id=3)
        errors = []
        second = IB()
        second.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
        with pytest.raises(BaseException):
            await second.connectAsync("127.0.0.1", gateway.port, clientId=3, timeout=1)
        assert 326 in errors
        first.disconnect()
    run(main())


def test_fault_injection_codes_and_dropped_socket(gateway):
    async def main():
        ib = await connect(gateway)
        codes, dropped = [], []
        ib.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
        ib.disconnectedEvent += lambda: dropped.append(True)
        await asyncio.to_thread(gateway.call, gateway.start_outage, 0.2)
        await asyncio.to_thread(gateway.call, gateway.farm, False)
        await asyncio.to_thread(gateway.call, gateway.farm, True)
        await until(lambda: 1102 in codes)
        assert [c for c in codes if c in (1100, 1102, 2103, 2104)] == [1100, 2103, 2104, 1102]
        await asyncio.to_thread(gateway.call, gateway.drop)
        await until(lambda: dropped and not ib.isConnected())
    run(main())


def test_delayed_ack(gateway):
    gateway.ack_delay = 0.5

    async def main():
        ib = await connect(gateway)
        [c] = await ib.qualifyContractsAsync(Stock("JPM", "SMART", "USD"))
        trade = ib.placeOrder(c, MarketOrder("BUY", 1, orderRef="slow"))
        await asyncio.sleep(0.3)
        assert trade.orderStatus.status == "PendingSubmit"
        await until(lambda: trade.isDone())
        ib.disconnect()
    run(main())


def test_open_and_completed_order_messages_decode_field_by_field(gateway):
    """Feed the gateway's own openOrder/completedOrder frames to ib_async's Decoder."""
    from plugins.broker.ib.fake_gateway import GwOrder

    seen = {}

    class Wrapper:
        def openOrder(self, order_id, contract, order, state):
            seen["open"] = (order_id, contract, order, state)

        def completedOrder(self, contract, order, state):
            seen["done"] = (contract, order, state)

    order = GwOrder(order_id=42, client_id=7, perm_id=123456, ref="rt:r:1:AAPL:3",
                    inst=gateway.instruments["AAPL"], action="SELL", quantity=25.0, order_type="LMT",
                    limit=187.25, tif="DAY", account="DU1234567", received=time.time(), status="Submitted",
                    filled=5.0)
    decoder = Decoder(Wrapper(), SERVER_VERSION)
    for fields in (gateway.open_order_fields(order), gateway.completed_order_fields(order)):
        raw = frame(fields)[4:].decode().split("\0")[:-1]
        decoder.handlers[int(raw[0])](raw)
    order_id, contract, o, state = seen["open"]
    assert (order_id, o.orderId, o.clientId, o.permId) == (42, 42, 7, 123456)
    assert (contract.symbol, contract.conId, o.action, o.totalQuantity) == ("AAPL", gateway.instruments["AAPL"].con_id, "SELL", 25.0)
    assert (o.orderType, o.lmtPrice, o.orderRef, state.status) == ("LMT", 187.25, "rt:r:1:AAPL:3", "Submitted")
    contract, o, state = seen["done"]
    assert (o.permId, o.orderRef, o.filledQuantity, state.status) == (123456, "rt:r:1:AAPL:3", 5.0, "Submitted")
    assert not math.isnan(o.lmtPrice)


def test_faults_stall_drop_ref_report_late_and_outage_with_resting_fills(gateway):
    """Each fault of ``gw.faults`` as the real client meets it."""
    async def main():
        ib = await connect(gateway)
        aapl, ko = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"), Stock("KO", "SMART", "USD"))
        # a stall: the socket stays open, a request gets no answer until it is over
        gateway.faults.stall(0.6)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ib.reqPositionsAsync(), 0.3)
        await asyncio.sleep(0.4)
        assert await asyncio.wait_for(ib.reqPositionsAsync(), 2) == []
        # no orderRef echo: the gateway's openOrder overwrites the client's, executions carry none
        gateway.faults.drop_ref = True
        trade = ib.placeOrder(ko, MarketOrder("BUY", 4, orderRef="mine"))
        await until(lambda: trade.isDone())
        assert trade.order.orderRef == "" and {f.execution.orderRef for f in trade.fills} == {""}
        gateway.faults.drop_ref = False
        # late reports: a client back on a new connection does not see its earlier orders at first
        resting = ib.placeOrder(aapl, LimitOrder("BUY", 5, 1.0, orderRef="rest"))
        await until(lambda: resting.orderStatus.status == "Submitted")
        gateway.faults.report_late(0.5)
        ib.disconnect()
        ib = await connect(gateway)
        assert [t.order.orderRef for t in await ib.reqOpenOrdersAsync()] == []
        assert await ib.reqExecutionsAsync() == []
        await asyncio.sleep(0.5)
        assert [t.order.orderRef for t in await ib.reqOpenOrdersAsync()] == ["rest"]
        assert len(await ib.reqExecutionsAsync()) == 2
        gateway.faults.report_late(0)
        # an outage: a resting order fills while the client is away, stamped `lasting` ago
        second = ib.placeOrder(ko, LimitOrder("BUY", 3, 1.0, orderRef="rest2"))
        await until(lambda: second.orderStatus.status == "Submitted")
        ib.disconnect()
        await asyncio.to_thread(gateway.call, gateway.faults.start_outage, 0.3, True, 400.0)
        await asyncio.sleep(0.1)
        with pytest.raises(ConnectionRefusedError):
            await connect(gateway)
        await asyncio.sleep(0.4)
        ib = await connect(gateway)
        fills = {f.execution.orderRef: f for f in await ib.reqExecutionsAsync()}
        assert fills["rest"].execution.price == 1.0 and fills["rest2"].execution.price == 1.0
        assert time.time() - fills["rest"].execution.time.timestamp() > 399  # filled meanwhile
        assert time.time() - fills["rest2"].execution.time.timestamp() < 60  # the last: on return
        ib.disconnect()
    run(main())
