"""Wall time of a paper tick against the fake IB gateway (the live tests' runs, timed here).

    python benchmarks/bench_live.py

One tick of ``python run.py mode=paper broker=ib mode.run_once=true``: buy-and-hold of four
symbols, TWAP over 3 bins of 0.5 s (1.5 s of the tick is the schedule itself), the bundled
closes; then the same tick reading its bars from the gateway (``data=ib``) with the gateway's
historical pacing at two requests a second and the client's at two per 1.1 s (four requests:
about 1.1 s of waiting). Each is the median of three fresh runs (new state folder, new gateway);
the process start (imports, config) is in the figure. These were ``< 60 s`` assertions in
tests/live/test_paper.py (and the restart loops' ``< 90 s``, ``< 200 s`` in test_crash.py and
test_soak.py, which print their figures).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SYMBOLS = ["AAPL", "JPM", "KO", "MSFT"]


def tick(paced: bool) -> float:
    from plugins.broker.ib.fake_gateway import FakeGateway, load_market

    gw = FakeGateway(market=load_market("sp500", history=400), fill_delay=0.03, partial=2).start_in_thread()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            args = ["mode=paper", "broker=ib", f"broker.port={gw.port}", "broker.reconnect_delay=0.1",
                    "mode.run_once=true", "mode.bins=3", "mode.bin_seconds=0.5", "mode.ack_timeout=2",
                    "mode.settle_seconds=10", f"mode.state_dir={tmp}/state", f"out_dir={tmp}/out",
                    "mode.pretrade.max_orders_per_second=100", "strategy=buy_and_hold", "execution=twap",
                    "schedule.rebalance=daily", f"data.symbols=[{','.join(SYMBOLS)}]", "progress=false"]
            if paced:
                gw.hist_limit = (2, 1.0)
                args += ["data=ib", f"data.cache_dir={tmp}/cache", "data.duration=1 Y", "data.max_requests=2",
                         "data.per_seconds=1.1", "data.identical_gap=0"]
            else:  # the bundled sample is old: paper mode refuses it unless told
                args += ["data=sp500", "mode.max_data_age=null"]
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *args], capture_output=True, text=True,
                                  cwd=tmp, stdin=subprocess.DEVNULL, timeout=300,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
            seconds = time.perf_counter() - start
            if proc.returncode != 0:
                raise SystemExit(f"paper tick failed (exit {proc.returncode}):\n{proc.stderr}")
            return seconds
    finally:
        gw.stop_thread()


def main(repeat: int = 3) -> None:
    rows = [("paper tick, bundled closes, TWAP 3 x 0.5 s", False),
            ("paper tick, data=ib paced (4 requests, 2 per 1.1 s)", True)]
    width = max(len(name) for name, _ in rows)
    print(f"{'case'.ljust(width)}  {'median s':>9}  {'best s':>7}")
    for name, paced in rows:
        times = [tick(paced) for _ in range(repeat)]
        print(f"{name.ljust(width)}  {statistics.median(times):9.2f}  {min(times):7.2f}")


if __name__ == "__main__":
    main()
