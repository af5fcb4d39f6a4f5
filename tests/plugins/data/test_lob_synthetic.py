"""The synthetic book's stylised facts, measured; the LOBSTER writer and reader on its files,
whole and in chunks; bad LOBSTER input named by file, line and event before any work."""

import numpy as np
import pytest

from pipeline.core.errors import DataError
from plugins.data.lob_synthetic import LOBSynthetic, synthetic_book
from plugins.data.lobster import LOBSTER, iter_lobster, read_lobster, write_lobster

SESSION = 23_400.0


@pytest.fixture(scope="module")
def day():
    """More than one session at two events a second."""
    return synthetic_book(n_events=60_000, seed=11, rate=2.0, messages=True)


def test_19_7_spread_is_one_tick_almost_all_the_time(day):
    # large-tick stocks: the spread sits at one tick (Dayri & Rosenbaum 2015; Huang, Lehalle &
    # Rosenbaum 2015); here it opens to two only between a queue depletion and its refill
    book, _ = day
    ticks = np.round(book.spread / 0.01)
    dwell = np.diff(book.time)
    assert ticks.min() >= 1 and set(np.unique(ticks)) <= {1.0, 2.0}
    assert dwell[ticks[:-1] == 1].sum() / dwell.sum() > 0.99
    assert 0.9 < (ticks == 1).mean() < 1.0          # two ticks does happen, as event rows


def test_19_7_order_sizes_are_round_lots_with_a_power_law_tail(day):
    # sizes cluster on round lots, the mode is one lot, the tail is a power law (Maslov &
    # Mills 2001; Gopikrishnan et al. 2000): the Hill / maximum-likelihood exponent of sizes
    # of 4 lots and more is the model's 2
    _, messages = day
    new = messages.loc[messages["type"] == 1, "size"].to_numpy()
    assert (messages["size"] % 100 == 0).all()
    lots = new / 100
    assert np.bincount(lots.astype(int)).argmax() == 1
    tail = lots[lots >= 4]
    alpha = 1.0 / np.mean(np.log(tail / 4.0))
    assert 1.7 < alpha < 2.3, alpha
    assert lots.max() >= 30                         # large orders do occur


def test_19_7_intraday_volume_is_u_shaped(day):
    # traded volume per half hour: high at the open and the close, low at midday (Admati &
    # Pfleiderer 1988; Jain & Joh 1988)
    book, _ = day
    t, size = book.trade_time, book.trade_size
    first = (t >= 34_200) & (t < 34_200 + SESSION)
    assert book.time[-1] > 34_200 + SESSION
    volume = np.bincount(((t[first] - 34_200) // 1_800).astype(int), weights=size[first], minlength=13)
    ends, middle = (volume[0] + volume[12]) / 2, volume[4:9].mean()
    assert ends > 1.4 * middle, volume
    assert 3 <= int(np.argmin(volume)) <= 9


def test_19_7_imbalance_signs_the_next_mid_move():
    # the level-1 queue imbalance predicts the next mid move, monotonically (Gould & Bonart 2016)
    book = synthetic_book(n_events=30_000, seed=7)
    mid = book.mid
    changes = np.flatnonzero(np.diff(mid) != 0)
    rows = np.flatnonzero(np.round(book.spread / 0.01) == 1)
    rows = rows[rows < changes[-1]]
    nxt = changes[np.searchsorted(changes, rows, side="left")]
    up = np.diff(mid)[nxt] > 0
    qb, qa = book.bid_size[rows, 0], book.ask_size[rows, 0]
    imbalance = (qb - qa) / (qb + qa)
    group = np.searchsorted(np.quantile(imbalance, [0.2, 0.4, 0.6, 0.8]), imbalance)
    p_up = np.array([up[group == g].mean() for g in range(5)])
    assert (np.diff(p_up) > 0).all(), p_up
    assert p_up[0] < 0.25 and p_up[-1] > 0.75, p_up


def test_19_7_lobster_writer_and_reader_round_trip_whole_and_in_chunks(tmp_path):
    book, messages = synthetic_book(n_events=4_000, seed=2, messages=True)
    msg, ob = write_lobster(tmp_path, messages, book)
    whole = read_lobster(msg, ob)
    pieces = list(iter_lobster(msg, ob, chunk_rows=1_000))
    assert len(pieces) == -(-book.n_rows // 1_000)
    for name in ("time", "bid_price", "bid_size", "ask_price", "ask_size"):
        np.testing.assert_allclose(np.concatenate([getattr(p, name) for p in pieces]), getattr(book, name), atol=1e-9)
        np.testing.assert_allclose(getattr(whole, name), getattr(book, name), atol=1e-9)
    offsets = np.cumsum([0] + [p.n_rows for p in pieces[:-1]])
    rows = np.concatenate([p.trade_row + o for p, o in zip(pieces, offsets)])
    np.testing.assert_array_equal(rows, book.trade_row)
    np.testing.assert_array_equal(np.concatenate([p.trade_sign for p in pieces]), book.trade_sign)
    source = LOBSTER(path=str(tmp_path))
    assert source.files() == (msg, ob) and source.load().n_rows == book.n_rows


def test_19_7_the_source_follows_the_run_seed():
    a, b = LOBSynthetic(n_events=500, seed=1).load(), LOBSynthetic(n_events=500, seed=2).load()
    assert not np.array_equal(a.bid_size, b.bid_size)
    np.testing.assert_array_equal(LOBSynthetic(n_events=500, seed=1).load().bid_size, a.bid_size)


def _damage(lines: list, line: int, column: int, value: str) -> str:
    cells = lines[line - 1].split(",")
    cells[column] = value
    lines[line - 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("damage, which, match", [
    ("type", "message", "line 8: unknown event type 9"),
    ("size", "message", "line 8: a size or price that is zero or negative"),
    ("price", "message", "line 8: a size or price that is zero or negative"),
    ("book size", "orderbook", "line 8: a negative size in the order book"),
    ("book price", "orderbook", "line 8: a price that is zero or negative"),
    ("backwards", "message", "line 8: time goes backwards"),
    ("crossed", "orderbook", "line 8: crossed book"),
    ("mismatch", "message", "the message and orderbook files do not match"),
])
@pytest.mark.parametrize("chunked", [False, True])
def test_19_bad_input_names_file_line_and_event(tmp_path, damage, which, match, chunked):
    book, messages = synthetic_book(n_events=300, seed=1, messages=True)
    msg, ob = write_lobster(tmp_path, messages, book)
    m, o = msg.read_text().splitlines(), ob.read_text().splitlines()
    if damage == "type":
        msg.write_text(_damage(m, 8, 1, "9"))
    elif damage == "size":
        msg.write_text(_damage(m, 8, 3, "-100"))
    elif damage == "price":
        msg.write_text(_damage(m, 8, 4, "0"))
    elif damage == "book size":
        ob.write_text(_damage(o, 8, 1, "-100"))
    elif damage == "book price":
        ob.write_text(_damage(o, 8, 2, "-5"))
    elif damage == "backwards":
        msg.write_text(_damage(m, 8, 0, "1.0"))
    elif damage == "crossed":
        ob.write_text(_damage(o, 8, 2, str(int(o[7].split(",")[0]) + 100)))
    elif damage == "mismatch":                      # another day's message file beside this book
        other, other_messages = synthetic_book(n_events=300, seed=2, price=50.0, messages=True)
        msg_other, _ = write_lobster(tmp_path / "other", other_messages, other)
        msg.write_text("\n".join(msg_other.read_text().splitlines()[:len(o)]) + "\n")
    with pytest.raises(DataError, match=match) as err:
        if chunked:
            list(iter_lobster(msg, ob, chunk_rows=5))
        else:
            read_lobster(msg, ob)
    text = str(err.value)
    assert (msg if which == "message" else ob).name in text and "event " in text and "\n" not in text
