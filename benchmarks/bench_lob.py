"""Speed and memory of the order-book engine (issue 19, point 5).

    python benchmarks/bench_lob.py            # the table below, on this machine
    python benchmarks/bench_lob.py --quick    # smaller inputs, a smoke run

1. Replay with no strategy: the exchange kernel over every event (trades matched, queues
   checked), the book streamed in chunks of 200,000 rows. Target: 1 million events/s.
2. A market maker (the fixed quoter of benchmarks/hft_peer.py, quotes every 0.1 s) on the same
   events in robo-trader and in hftbacktest (bench extra), at two event rates: the synthetic
   book's default (20 events/s) and a busier book (500 events/s). Both engines' numba code is
   compiled (or loaded from its cache) by a warm-up first, and each figure is the best of
   ``REPEAT`` runs (the machine may be shared); both fill identically
   (tests/benchmarks/test_hftbacktest_peer.py). robo-trader runs the quoter's compiled quote
   rule in its compiled loop (pipeline/lob/loop.py); one run through ``decide`` in Python
   (``compiled=False``, the loop for strategies without a compiled rule) is shown beside it.
3. The microstructure taker (its defaults: a decision every second, market orders) compiled
   (``Microstructure.target_kernel``) and through ``decide``, on the 20 events/s book.
4. Memory: the peak Python allocation (tracemalloc) replaying a LOBSTER file pair whole and
   streamed in chunks (data.chunk_rows): streaming stays near one chunk.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hft_peer  # noqa: E402  (benchmarks/ is not a package)
from pipeline.lob.engine import replay  # noqa: E402
from plugins.data.lob_synthetic import synthetic_book  # noqa: E402
from plugins.data.lobster import LOBSTER, write_lobster  # noqa: E402
from plugins.strategy.microstructure import Microstructure  # noqa: E402


def shifted(book, times: int):
    """``book`` replayed ``times`` times back to back (each copy later by its span): a long
    stream without generating it, in chunks of one copy."""
    span = book.time[-1] - book.time[0] + 1.0
    for i in range(times):
        yield dataclasses.replace(book, time=book.time + i * span)


def bench_replay(rows: int, copies: int) -> None:
    book = synthetic_book(n_events=rows, seed=7)
    ex = hft_peer.exchange()
    replay(synthetic_book(n_events=500, seed=1), None, ex, interval=60.0)       # load the compiled kernel
    started = time.perf_counter()
    result = replay(shifted(book, copies), None, ex, interval=60.0)
    elapsed = time.perf_counter() - started
    print(f"replay, no strategy: {result.events:,} events in {elapsed:.2f}s = "
          f"{result.events / elapsed / 1e6:.2f} M events/s (chunks of {book.n_rows:,})")


REPEAT = 5


def best(run) -> dict:
    return min((run() for _ in range(REPEAT)), key=lambda r: r["seconds"])


def bench_market_maker(rows: int, rate: float, fn) -> None:
    book = synthetic_book(n_events=rows, seed=7, rate=rate)
    events = hft_peer.to_hftbacktest(book, feed=0.001)
    ours = best(lambda: hft_peer.run_ours(book, 0.1))
    theirs = best(lambda: hft_peer.run_hftbacktest(events, 0.1, quoter_fn=fn))
    python = hft_peer.run_ours(book, 0.1, compiled=False)
    print(f"market maker, {rate:g} events/s, quotes every 0.1 s ({book.n_rows:,} rows, "
          f"{book.time[-1] - book.time[0]:,.0f} s of book):")
    for name, r in (("robo-trader", ours), ("hftbacktest", theirs), ("  (Python decide)", python)):
        print(f"  {name:17s} {book.n_rows / r['seconds']:>12,.0f} events/s  ({r['seconds']:.3f}s, "
              f"{r['fills']} fills, P&L {r['pnl']:,.2f})")
    print(f"  ratio: robo-trader takes {ours['seconds'] / theirs['seconds']:.2f}x hftbacktest's time "
          f"(Python decide: {python['seconds'] / theirs['seconds']:.0f}x)")


def bench_taker(rows: int) -> None:
    book = synthetic_book(n_events=rows, seed=7)
    ex = hft_peer.exchange()
    timed = {}
    for compiled in (True, False):
        runs = []
        for _ in range(REPEAT if compiled else 1):
            started = time.perf_counter()
            result = replay(book, Microstructure(), ex, compiled=compiled)
            runs.append(time.perf_counter() - started)
        timed[compiled] = (min(runs), len(result.fills["qty"]))
    print(f"microstructure taker, decisions every 1 s ({book.n_rows:,} rows):")
    for compiled, label in ((True, "compiled"), (False, "Python decide")):
        seconds, fills = timed[compiled]
        print(f"  {label:17s} {book.n_rows / seconds:>12,.0f} events/s  ({seconds:.3f}s, {fills} fills)")


def bench_memory(rows: int, chunk: int) -> None:
    book, messages = synthetic_book(n_events=rows, seed=7, messages=True)
    with tempfile.TemporaryDirectory() as folder:
        message, _ = write_lobster(folder, messages, book)
        size = sum(p.stat().st_size for p in Path(folder).glob("*.csv"))
        del book, messages
        ex = hft_peer.exchange()
        for label, source in (("whole", LOBSTER(path=str(message))),
                              (f"chunks of {chunk:,}", LOBSTER(path=str(message), chunk_rows=chunk))):
            tracemalloc.start()
            replay(source.chunks(), None, ex, interval=60.0)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(f"memory, LOBSTER files of {size / 1e6:.0f} MB, {label}: peak {peak / 1e6:.0f} MB")


def main(argv=None) -> None:
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    bench_replay(20_000 if quick else 200_000, 5 if quick else 10)
    fn = hft_peer.hft_quoter()
    hft_peer.run_hftbacktest(hft_peer.to_hftbacktest(synthetic_book(n_events=500, seed=1), 0.001), 0.1, quoter_fn=fn)
    hft_peer.run_ours(synthetic_book(n_events=500, seed=1), 0.1)
    for rate in (20.0, 500.0):
        bench_market_maker(5_000 if quick else 100_000, rate, fn)
    replay(synthetic_book(n_events=500, seed=1), Microstructure(), hft_peer.exchange())      # load the compiled rule
    bench_taker(5_000 if quick else 100_000)
    bench_memory(20_000 if quick else 300_000, 2_000 if quick else 30_000)


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).add_argument("--quick", action="store_true")
    main()
