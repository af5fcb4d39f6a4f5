import numpy as np
import pytest

from pipeline.core.errors import DataError
from plugins.data.lob_synthetic import synthetic_book
from plugins.data.lobster import OrderBook, find_lobster, read_lobster, write_lobster
from plugins.strategy.microstructure import Microstructure


@pytest.fixture(scope="module")
def book():
    return synthetic_book(n_events=30_000, seed=7)


def next_mid_move(book: OrderBook) -> np.ndarray:
    """Sign of the next change of the mid after each row (0 when there is none)."""
    mid = book.mid
    changes = np.flatnonzero(np.diff(mid) != 0)
    nxt = np.searchsorted(changes, np.arange(book.n_rows), side="left")
    out = np.zeros(book.n_rows)
    ok = nxt < changes.size
    out[ok] = np.sign(np.diff(mid)[changes[nxt[ok]]])
    return out


def test_generator_is_seeded_and_consistent(book):
    again = synthetic_book(n_events=30_000, seed=7)
    for f in ("time", "bid_price", "bid_size", "ask_price", "ask_size", "trade_row", "trade_sign"):
        np.testing.assert_array_equal(getattr(book, f), getattr(again, f))
    assert not np.array_equal(synthetic_book(n_events=2_000, seed=8).bid_size,
                              synthetic_book(n_events=2_000, seed=7).bid_size)
    ticks = np.round(book.spread / 0.01)
    assert set(np.unique(ticks)) <= {1.0, 2.0} and (ticks == 1).mean() > 0.8
    assert (np.diff(book.bid_price, axis=1) < 0).all() and (np.diff(book.ask_price, axis=1) > 0).all()
    assert (book.bid_size > 0).all() and (book.ask_size > 0).all() and (np.diff(book.time) >= 0).all()
    assert book.trade_row.size > 3_000 and set(np.unique(book.trade_sign)) == {-1.0, 1.0}
    # buys print at the ask, sells at the bid, as of the book before the trade
    before = book.trade_row - 1
    buys = book.trade_sign > 0
    np.testing.assert_allclose(book.trade_price[buys], book.ask_price[before[buys], 0])
    np.testing.assert_allclose(book.trade_price[~buys], book.bid_price[before[~buys], 0])


@pytest.mark.parametrize("kind, floor", [("imbalance", 0.3), ("microprice", 0.3),
                                         ("trade_flow", 0.03), ("combined", 0.3)])
def test_signal_correlates_with_the_next_mid_move(book, kind, floor):
    rows = np.flatnonzero(np.round(book.spread / 0.01) == 1)[:-1]
    move = next_mid_move(book)[rows]
    s = Microstructure(kind=kind, levels=1 if kind == "imbalance" else 3).signal(book, rows)[:, 0]
    keep = move != 0
    corr = np.corrcoef(s[keep], move[keep])[0, 1]
    assert corr > floor, f"{kind}: corr {corr:.3f}"


def test_deeper_levels_and_decay(book):
    rows = np.arange(0, book.n_rows, 50)
    one = Microstructure(kind="imbalance", levels=1).components(book, rows)["imbalance"]
    q = book.bid_size[rows, 0], book.ask_size[rows, 0]
    np.testing.assert_allclose(one, (q[0] - q[1]) / (q[0] + q[1]))
    three = Microstructure(kind="imbalance", levels=3, decay=0.5).components(book, rows)["imbalance"]
    w = np.array([1.0, 0.5, 0.25])
    b, a = book.bid_size[rows, :3] @ w, book.ask_size[rows, :3] @ w
    np.testing.assert_allclose(three, (b - a) / (b + a))
    micro = Microstructure().components(book, rows)["microprice"]
    half = book.spread[rows] / 2
    np.testing.assert_allclose(micro, (book.microprice[rows] - book.mid[rows]) / half, atol=1e-9)


def test_trade_flow_counts_only_known_trades_in_the_window(book):
    m = Microstructure(kind="trade_flow", flow_window=10.0)
    rows = np.array([500, 5_000, 20_000])
    flow = m.signal(book, rows)[:, 0]
    for k, row in enumerate(rows):
        known = book.trade_row <= row
        recent = book.trade_time > book.time[row] - 10.0
        sel = known & recent
        signed = (book.trade_sign[sel] * book.trade_size[sel]).sum()
        assert flow[k] == pytest.approx(signed / book.trade_size[sel].sum())


def test_truncation_invariance_and_determinism_on_the_book(book):
    rows = book.decision_rows(every=5.0)
    assert rows.size > 100
    for kind in ("imbalance", "microprice", "trade_flow", "combined"):
        m = Microstructure(kind=kind, threshold=0.1)
        full = m.signal(book, rows)
        np.testing.assert_array_equal(Microstructure(kind=kind, threshold=0.1).signal(book, rows), full)
        for i in np.linspace(0, rows.size - 1, 10).astype(int):
            cut = m.signal(book.view(int(rows[i]) + 1), rows[: i + 1])
            np.testing.assert_array_equal(cut[-1], full[i])
        assert full.shape == (rows.size, 1) and np.isfinite(full).all()
        assert (np.abs(full[full != 0]) >= 0.1).all()


def test_clock_decisions(book):
    rows = book.decision_rows(every=1.0)
    grid = np.arange(np.ceil(book.time[0]), book.time[-1], 1.0)
    assert (book.time[rows] <= grid[-1] + 1e-9).all()
    idx = book.rows_at(grid)
    after = book.time[np.minimum(idx + 1, book.n_rows - 1)]
    assert (book.time[idx] <= grid).all() and (after[:-1] > grid[:-1]).all()
    stamps = book.timestamps()
    assert stamps.tz is not None and stamps[0].strftime("%H:%M") == "09:30"


def test_lobster_round_trip(tmp_path):
    book, messages = synthetic_book(n_events=3_000, seed=3, messages=True)
    msg_path, ob_path = write_lobster(tmp_path, messages, book)
    assert msg_path.name == "SYN_2024-01-02_34200000_57600000_message_5.csv"
    assert find_lobster(tmp_path) == [(msg_path, ob_path)]
    back = read_lobster(msg_path, ob_path)
    assert back.symbol == "SYN" and back.date == "2024-01-02" and back.levels == 5
    np.testing.assert_allclose(back.time, book.time, atol=1e-9)
    for f in ("bid_price", "ask_price"):
        np.testing.assert_allclose(getattr(back, f), getattr(book, f), atol=1e-9)
    for f in ("bid_size", "ask_size", "trade_row", "trade_sign", "trade_size"):
        np.testing.assert_array_equal(getattr(back, f), getattr(book, f))
    np.testing.assert_allclose(back.trade_price, book.trade_price, atol=1e-9)
    rows = back.decision_rows(every=2.0)
    np.testing.assert_allclose(Microstructure().signal(back, rows), Microstructure().signal(book, rows),
                               atol=1e-12)


def test_lobster_empty_levels_and_hidden_executions(tmp_path):
    msg = tmp_path / "X_2012-06-21_34200000_57600000_message_2.csv"
    ob = tmp_path / "X_2012-06-21_34200000_57600000_orderbook_2.csv"
    msg.write_text("34200.01,1,1,100,1000000,1\n34200.02,4,1,50,1000000,1\n"
                   "34200.03,5,0,30,1000100,-1\n34200.04,7,-1,0,-1,-1\n")
    ob.write_text("1000100,200,1000000,100,9999999999,0,-9999999999,0\n"
                  "1000100,200,1000000,50,9999999999,0,-9999999999,0\n"
                  "1000100,200,1000000,50,9999999999,0,-9999999999,0\n"
                  "1000100,200,1000000,50,9999999999,0,-9999999999,0\n")
    b = read_lobster(msg, ob)
    assert b.bid_price[0, 0] == 100.0 and b.ask_price[0, 0] == 100.01
    assert np.isnan(b.bid_price[:, 1]).all() and (b.ask_size[:, 1] == 0).all()
    np.testing.assert_array_equal(b.trade_row, [1, 2])          # types 4 and 5
    np.testing.assert_array_equal(b.trade_sign, [-1.0, 1.0])    # hit a buy order: seller-initiated
    np.testing.assert_array_equal(b.trade_size, [50, 30])
    assert Microstructure(levels=2).signal(b, np.arange(4)).shape == (4, 1)


@pytest.mark.parametrize("damage, match", [
    ("rows", "rows"), ("columns", "columns"), ("missing", "does not exist"),
    ("backwards", "backwards"), ("crossed", "crossed"), ("text", "non-numeric")])
def test_lobster_errors_name_the_file(tmp_path, damage, match):
    book, messages = synthetic_book(n_events=200, seed=1, messages=True)
    msg_path, ob_path = write_lobster(tmp_path, messages, book)
    lines = ob_path.read_text().splitlines()
    if damage == "rows":
        ob_path.write_text("\n".join(lines[:-1]) + "\n")
    elif damage == "columns":
        ob_path.write_text("\n".join(l.rsplit(",", 1)[0] for l in lines) + "\n")
    elif damage == "missing":
        ob_path.unlink()
    elif damage == "backwards":
        m = msg_path.read_text().splitlines()
        m[5] = "1.0" + m[5][m[5].index(","):]
        msg_path.write_text("\n".join(m) + "\n")
    elif damage == "crossed":
        cols = lines[7].split(",")
        cols[2] = str(int(cols[0]) + 100)
        lines[7] = ",".join(cols)
        ob_path.write_text("\n".join(lines) + "\n")
    elif damage == "text":
        lines[3] = lines[3].replace(",", ",x", 1)
        ob_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=match) as err:
        read_lobster(msg_path, ob_path)
    assert str(ob_path.name if damage != "backwards" else msg_path.name) in str(err.value)


def test_daily_bars_are_refused_with_a_clear_error(sp500):
    with pytest.raises(DataError, match="order book"):
        Microstructure().signal(sp500, np.array([100]))


def test_order_book_shapes_are_checked():
    with pytest.raises(ValueError, match="ask_size"):
        OrderBook(time=np.zeros(3), bid_price=np.zeros((3, 2)), bid_size=np.zeros((3, 2)),
                  ask_price=np.zeros((3, 2)), ask_size=np.zeros((2, 2)), trade_row=np.zeros(0, int),
                  trade_price=np.zeros(0), trade_size=np.zeros(0), trade_sign=np.zeros(0))
