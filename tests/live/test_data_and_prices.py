"""Paper trading on the data and prices of now: the data's age (13.6), decisions keyed by the
config that made them (13.7), sizing on the gateway's quotes (14.8)."""

from __future__ import annotations

import re
import signal

import pandas as pd
import pytest

from pipeline.core.errors import ConfigError
from pipeline.live.schedule import max_age
from tests.live.conftest import ROOT, SAMPLE, SYMBOLS, journal, ok, paper_args, run_py

pytestmark = pytest.mark.slow


def one_line(proc) -> str:
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


# ------------------------------------------------------------ 13.6 the data's age

def test_13_6_paper_refuses_the_bundled_sample_by_default_naming_source_last_bar_and_data_ib(gateway, tmp_path):
    args = [a for a in paper_args(gateway, tmp_path) if a not in SAMPLE[1:]]  # no age override
    line = one_line(run_py(*args))
    assert line.startswith("robo-trader: data error: data sp500: its last bar is 2022-12-28 16:00 EST, ")
    assert "older than mode.max_data_age=2 (business days)" in line and "use data=ib" in line
    assert gateway.snapshot()["received"] == []  # nothing was sent


def test_13_6_the_age_limit_is_business_days_or_a_duration(gateway, tmp_path):
    assert max_age("2") == 2 and max_age(None) is None
    assert max_age("36h") == pd.Timedelta(hours=36)
    for bad in ("soon", "-1h", "0s"):
        with pytest.raises(ConfigError, match="mode.max_data_age="):
            max_age(bad)
    args = [a for a in paper_args(gateway, tmp_path, "mode.max_data_age=36h") if a not in SAMPLE[1:]]
    line = one_line(run_py(*args))
    assert re.search(r"2022-12-28 16:00 EST, \d+\.\d hours ago, older than mode.max_data_age=36h", line)
    # IB's bars are today's: the default limit lets them through
    args = [a for a in fast(gateway, tmp_path, "data=ib", f"data.cache_dir={tmp_path / 'cache'}",
                            "data.duration=3 M") if a not in SAMPLE]
    assert "positions match targets" in ok(run_py(*args))


def test_13_6_the_readme_paper_commands_trade_on_live_data():
    text = (ROOT / "README.md").read_text()
    commands = [line for line in text.splitlines() if line.startswith("python run.py mode=paper")]
    assert commands and all("data=ib" in line for line in commands)


# ------------------------------------------------------------ 13.7 decisions keyed by their config

def momentum_args(gw, tmp, *extra: str) -> list[str]:
    return [a for a in paper_args(gw, tmp, "strategy=momentum", "allocation=equal_weight", *extra)
            if a != "strategy=buy_and_hold"]


def test_13_7_another_top_k_on_the_same_bar_is_a_decision_of_its_own(gateway, tmp_path):
    ok(run_py(*momentum_args(gateway, tmp_path, "strategy.momentum.top_k=2")))
    sent = len(gateway.snapshot()["received"])
    assert sent > 0
    out = ok(run_py(*momentum_args(gateway, tmp_path, "strategy.momentum.top_k=3")))
    assert "on this bar had another config (changed: strategy.momentum.top_k): deciding again" in out
    assert len(gateway.snapshot()["received"]) > sent  # the new targets were traded
    db = journal(tmp_path)
    rows = db.execute("SELECT decision, bar, config FROM decisions ORDER BY created").fetchall()
    assert len(rows) == 2 and rows[0]["bar"] == rows[1]["bar"] == "2022-12-28T16:00:00-05:00"
    assert rows[0]["config"] != rows[1]["config"]
    assert len(gateway.snapshot()["positions"]) == 3  # the top 3 are held, not the top 2
    # the same config again on the same bar is done
    again = ok(run_py(*momentum_args(gateway, tmp_path, "strategy.momentum.top_k=3")))
    assert f"decision {rows[1]['decision']} already done: nothing to do" in again


def test_13_7_a_changed_config_between_decision_bars_says_what_differs_and_how_to_trade_it(gateway, tmp_path):
    monthly = ("schedule.rebalance=monthly",)
    ok(run_py(*momentum_args(gateway, tmp_path, *monthly, "strategy.momentum.top_k=2", "data.end=2022-11-30")))
    out = ok(run_py(*[a for a in momentum_args(gateway, tmp_path, *monthly, "strategy.momentum.top_k=3")
                      if a != "schedule.rebalance=daily"]))
    assert ("no decision due at 2022-12-28T16:00:00-05:00: last monthly decision bar is 2022-11-30 16:00:00-05:00; "
            "the config differs from decision 2022-11-30T16:00:00-05:00#") in out
    assert "(changed: strategy.momentum.top_k): its targets trade at the next decision bar, or now with " \
           "schedule.rebalance=daily" in out


def test_13_7_a_journal_from_before_config_keys_opens_and_its_decision_stands(gateway, tmp_path):
    ok(run_py(*paper_args(gateway, tmp_path)))
    sent = len(gateway.snapshot()["received"])
    db = journal(tmp_path)  # back to the old layout: decisions keyed by their bar alone
    with db:
        for table in ("parents", "orders"):
            db.execute(f"UPDATE {table} SET decision = (SELECT bar FROM decisions)")
        db.execute("CREATE TABLE old AS SELECT decision, run_id, status, equity, started, horizon, created, "
                   "updated, note FROM decisions")
        db.execute("UPDATE old SET decision = (SELECT bar FROM decisions)")
        db.execute("DROP TABLE decisions")
        db.execute("ALTER TABLE old RENAME TO decisions")
    db.close()
    out = ok(run_py(*paper_args(gateway, tmp_path)))
    assert ("decision 2022-12-28T16:00:00-05:00 already done (journaled before decisions were keyed by "
            "their config): nothing to do") in out
    assert len(gateway.snapshot()["received"]) == sent
    row = journal(tmp_path).execute("SELECT decision, bar, config FROM decisions").fetchone()
    assert (row["decision"], row["bar"], row["config"]) == ("2022-12-28T16:00:00-05:00",) * 2 + (None,)


# ------------------------------------------------------------ 14.8 sizing on current prices

def fast(gw, tmp, *extra: str) -> list[str]:
    """One bin of two seconds: every child (a whole parent) goes at once, with time to fill on a
    loaded machine."""
    return paper_args(gw, tmp, "mode.bins=1", "mode.bin_seconds=2", "mode.pretrade.max_order_notional=null",
                      *extra)


def moved(gw, factor: float) -> dict[str, float]:
    """The gateway's prices moved by ``factor`` since the data's last close (as four years do)."""
    close = {s: gw.prices[s] for s in SYMBOLS}
    for s in SYMBOLS:
        gw.call(gw.set_price, s, close[s] * factor)
    return close


def test_14_8_without_market_data_no_child_is_sized_on_the_datas_last_close(gateway, tmp_path):
    moved(gateway, 1.5)
    gateway.market_data(False)
    out = ok(run_py(*fast(gateway, tmp_path)))
    assert (f"warning: no current quote for AAPL, JPM, KO, MSFT from 127.0.0.1:{gateway.port} "
            f"(IB error 354: Requested market data is not subscribed.): their orders are not sized") in out
    assert "no current quote for AAPL, JPM, KO, MSFT (lot 1.0): no order" in out
    assert gateway.snapshot()["received"] == []  # before: 4 orders sized on the 2022 closes, 150 % gross
    note = journal(tmp_path).execute("SELECT status, note FROM decisions").fetchone()
    assert tuple(note) == ("done", "no current quote for AAPL, JPM, KO, MSFT")


def test_14_8_with_market_data_shares_are_sized_on_the_quotes_and_the_exposure_checked(gateway, tmp_path):
    close = moved(gateway, 1.5)
    out = ok(run_py(*fast(gateway, tmp_path)))
    db = journal(tmp_path)
    for p in db.execute("SELECT * FROM parents"):
        quote = gateway.prices[p["symbol"]]
        assert p["arrival"] == pytest.approx(quote) and p["arrival"] != pytest.approx(close[p["symbol"]])
        assert p["target"] == round(0.25 * 1_000_000 / quote)  # before: round(0.25e6 / close), 150 % gross
    assert "positions match targets; gross exposure 100.0% of net liquidation at current prices " \
           "(target 100.0%)" in out


def test_14_8_the_final_check_reports_exposure_at_current_prices_when_shares_match(gateway, tmp_path):
    from pipeline.live.execution import exposure_check

    # the trial: shares sized on closes two thirds of today's prices match their targets
    wanted = {s: 0.25 for s in SYMBOLS}
    positions = {s: 2500.0 for s in SYMBOLS}
    text = exposure_check(wanted, positions, {s: 150.0 for s in SYMBOLS}, 1_000_000.0)
    assert text == ("exposure off target at current prices: gross 150.0% of net liquidation (target 100.0%), "
                    "AAPL 37.5% (target 25.0%), JPM 37.5% (target 25.0%), KO 37.5% (target 25.0%), "
                    "MSFT 37.5% (target 25.0%)")
    assert exposure_check(wanted, positions, {"AAPL": 100.0}, 1_000_000.0, "IB error 354") == (
        "gross exposure 25.0% of net liquidation at current prices (target 25.0%); not checked at current "
        "prices (no quote: IB error 354): JPM, KO, MSFT")
    # end to end: a plan sized before a crash, resumed after the prices moved (no collar to stop it)
    args = fast(gateway, tmp_path, "mode.ack_timeout=0.5", "mode.pretrade.price_collar=null")
    assert run_py(*args, crash="after_intent:1").returncode == -signal.SIGKILL
    moved(gateway, 1.5)
    out = ok(run_py(*args))
    assert "positions match targets; exposure off target at current prices: gross 150." in out
    assert "(target 100.0%), AAPL 37." in out


def test_14_8_a_quote_left_from_an_earlier_request_is_not_a_current_one(gateway):
    import asyncio

    from pipeline.core.live_broker import Listener
    from plugins.broker.ib import IBBroker

    async def main():
        broker = IBBroker(port=gateway.port, client_id=31)
        await broker.start(Listener())
        try:
            await broker.qualify(["AAPL"])
            first = await broker.quotes(["AAPL"])
            gateway.market_data(False)  # ib_async still holds the first snapshot's ticker
            return first, await broker.quotes(["AAPL"]), broker.quote_problem()
        finally:
            await broker.stop()

    first, second, problem = asyncio.run(main())
    assert first == {"AAPL": pytest.approx(gateway.prices["AAPL"])}
    assert second == {} and problem == "IB error 354: Requested market data is not subscribed."
