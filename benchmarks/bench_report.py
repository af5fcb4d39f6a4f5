"""Speed of ``report.html``, which every run and every sweep job writes.

    python benchmarks/bench_report.py

Runs the default backtest once into a temporary folder, then prints the time of
``tearsheet.build`` over its files (best of several, after a warm-up) and the report's size.
Target: well under 0.2 s for the default run (20 stocks x 8,313 days).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(repeat: int = 5) -> None:
    from pipeline.report import tearsheet
    from pipeline.report.benchmark import folder_benchmark

    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, str(ROOT / "run.py"), f"out_dir={out}"], check=True,
                       capture_output=True, cwd=ROOT)
        frames, metrics, prov = tearsheet.read_folder(Path(out))
    bench = folder_benchmark(prov, frames["equity"].index)
    html = tearsheet.build(frames, metrics, prov, bench)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        tearsheet.build(frames, metrics, prov, bench)
        times.append(time.perf_counter() - start)
    print(f"report.build, default run: best {min(times):.3f} s of {repeat} (target < 0.2 s); "
          f"report.html {len(html.encode()) / 1024:,.0f} KiB")


if __name__ == "__main__":
    main()
