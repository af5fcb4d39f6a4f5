"""A run with exit rules, as the user sees it: orders.csv, fills.csv, execution.csv and
report.html say each exit's order type, trigger and reason; metrics.json's ``exits`` counts
them per rule with their average return and splits the P&L between exits and rebalances."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from pipeline.app import config
from pipeline.app.runner import run

CONF = str(Path(__file__).resolve().parents[3] / "conf")
RULES = "exits=[stop_loss,trailing_stop,take_profit,time_stop]"
config.register()


def _run(out: Path, *overrides) -> dict:
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*overrides, f"out_dir={out}", "progress=false"])
    return run(cfg)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    base = tmp_path_factory.mktemp("exits")
    close_only = base / "sp500"
    _run(close_only, "data.start=2012-01-01", RULES, "exits.stop_loss.pct=0.06", "exits.time_stop.bars=30")
    ohlc = base / "stocks"
    _run(ohlc, "data=stocks", "strategy=buy_and_hold", RULES, "exits.stop_loss.pct=0.08",
         "exits.take_profit.pct=0.3")
    return {"sp500": close_only, "stocks": ohlc}


@pytest.mark.parametrize("case", ["sp500", "stocks"])
def test_16_3_order_type_trigger_and_reason_in_every_table(folders, case):
    out = folders[case]
    orders, fills, ex = (pd.read_csv(out / f"{n}.csv") for n in ("orders", "fills", "execution"))
    for frame in (orders, fills, ex):
        assert {"order_type", "trigger", "reason"} <= set(frame.columns)
    exits = orders[orders["reason"] != "rebalance"]
    assert set(exits["reason"].str.replace(" (gap)", "", regex=False)) == {
        "stop_loss", "trailing_stop", "take_profit", "time_stop"}
    kinds = dict(zip(exits["reason"].str.replace(" (gap)", "", regex=False), exits["order_type"]))
    assert kinds == {"stop_loss": "stop", "trailing_stop": "trailing_stop", "take_profit": "limit",
                     "time_stop": "market_on_close"}
    # a triggered exit names its trigger; a time stop has none
    timed = exits["reason"] == "time_stop"
    assert exits.loc[~timed, "trigger"].gt(0).all() and exits.loc[timed, "trigger"].isna().all()
    assert (orders.loc[orders["reason"] == "rebalance", "order_type"] == "market").all()
    assert fills["order_id"].isin(orders["order_id"]).all() and len(fills) >= len(orders)
    assert pd.to_datetime(fills["time"]).is_monotonic_increasing
    stop = exits[exits["reason"].str.startswith("stop_loss")]
    sells = stop["side"] == "sell"
    # a long's stop: filled at (a gap: below) its trigger, less the half spread and impact
    assert (stop.loc[sells, "avg_fill_price"] <= stop.loc[sells, "trigger"] * (1 + 1e-12)).all()
    html = (out / "report.html").read_text()
    assert "<h3>Exits between decisions</h3>" in html
    assert "gapped through" in html and "rebalances (the rest)" in html


def test_16_2_ohlc_exits_touch_at_the_level_and_close_only_fills_at_the_close(folders):
    ohlc = pd.read_csv(folders["stocks"] / "orders.csv")
    stops = ohlc[ohlc["reason"] == "stop_loss"]  # touched inside a bar: the level itself
    assert len(stops) and np.allclose(stops["arrival_price"], stops["trigger"])
    close_only = pd.read_csv(folders["sp500"] / "orders.csv")
    stopped = close_only[close_only["reason"].str.startswith("stop_loss")]
    assert (stopped["reason"] == "stop_loss (gap)").all()  # every close-only stop fills at the close
    prov = json.loads((folders["sp500"] / "provenance.json").read_text())
    assert any(n.startswith("exits on close-only data: each close stands for") for n in prov["assumptions"])
    assert "exits on close-only data" in (folders["sp500"] / "report.html").read_text()
    prov = json.loads((folders["stocks"] / "provenance.json").read_text())
    assert any(n.startswith("exits are checked every bar on its open, high and low") for n in prov["assumptions"])


@pytest.mark.parametrize("case", ["sp500", "stocks"])
def test_16_5_metrics_count_exits_per_rule_and_split_the_pnl(folders, case):
    out = folders[case]
    m = json.loads((out / "metrics.json").read_text())
    x = m["exits"]
    orders = pd.read_csv(out / "orders.csv")
    reasons = orders["reason"].str.replace(" (gap)", "", regex=False)
    for rule, stats in x["rules"].items():
        assert stats["count"] == int((reasons == rule).sum()) > 0, rule
        assert stats["gaps"] == int((orders["reason"] == f"{rule} (gap)").sum())
    assert x["count"] == sum(s["count"] for s in x["rules"].values())
    assert x["pnl_exits"] == pytest.approx(sum(s["pnl"] for s in x["rules"].values()), rel=1e-12)
    assert x["pnl_exits"] + x["pnl_rebalances"] == pytest.approx(m["final_equity"] - 1e6, rel=1e-12)
    # a stop-loss loses and a take-profit wins on average, by about their distances
    assert x["rules"]["stop_loss"]["avg_return"] < 0 < x["rules"]["take_profit"]["avg_return"]
    fills = pd.read_csv(out / "fills.csv")
    assert m["n_trades"] == len(fills)
    assert m["cost_commission"] == pytest.approx(fills["commission"].sum(), rel=1e-9)


def test_16_5_average_return_by_hand_on_one_stop(tmp_path):
    from tests.pipeline.backtest.test_exits import bars, once
    from pipeline.results import exits as exit_results
    from plugins.broker.sim import SimBroker
    from plugins.exits.stop_loss import StopLoss

    data = bars((100, 100, 100, 100), (100, 101, 99, 100), (95, 96, 88, 92))
    ledger = once(data, {"stop_loss": StopLoss(pct=0.1)},
                  broker=SimBroker(commission_bps=5.0, commission_min=0.0, half_spread_bps=10.0,
                                   impact_coef=0.0, margin_rate_bps=0.0, borrow_fee_bps=0.0))
    entry = 100 * (1 + 10e-4) / (1 + 10e-4)  # the entry's average cost is before costs: the open
    fill = 90 * (1 - 10e-4)
    expected = (fill - entry) / entry - 5e-4 * 90 / entry
    got = exit_results.metrics(ledger)["rules"]["stop_loss"]["avg_return"]
    assert got == pytest.approx(expected, rel=1e-12)
