"""Digests of every output file of a fixed set of runs, to hold a refactoring to "behaviour unchanged".

    python -m tests.golden.digests            # compare with tests/golden/digests.json, list what differs
    python -m tests.golden.digests --write    # record them (after a deliberate change of outputs)

Each case is run as a user runs it (``python run.py ...`` in a temporary folder). What may differ
between two commits without the behaviour changing is taken out before hashing, and only that:
provenance's ``code_version`` (the git commit), the run's own folder in Hydra's files, Hydra's
log lines' timestamps, the code version shown in report.html, the module paths of classes
that moved when pipeline/ and plugins/ became packages by concern (``MOVED``: a config's
``_target_`` names the module), and config keys added since at the value that keeps the recorded
behaviour (``ADDED``). ``tests/golden/test_digests.py`` runs the comparison (slow).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORD = Path(__file__).with_name("digests.json")
SHORT = ["data.start=2005-01-01"]  # 18 years: every algorithm slices sessions in seconds

# name -> overrides; every allocator and every execution algorithm at least once, sleeves,
# drift, lots, constraints, a walk-forward and a sweep
CASES: dict[str, list[str]] = {
    "default": [],
    "inverse_vol_twap": ["allocation=inverse_vol", "execution=twap", *SHORT],
    "risk_parity_vwap": ["allocation=risk_parity", "execution=vwap", *SHORT],
    "risk_budgeting_pov": ["allocation=risk_budgeting", "execution=pov", *SHORT],
    "kelly_iceberg": ["allocation=kelly", "execution=iceberg", *SHORT],
    "adaptive_adaptive": ["allocation=adaptive", "execution=adaptive", *SHORT],
    "min_variance_is": ["allocation=min_variance", "execution=implementation_shortfall", *SHORT],
    "mean_variance_smart": ["allocation=mean_variance", "execution=smart", *SHORT],
    "hrp_weekly_drift": ["allocation=hrp", "schedule.rebalance=weekly", "schedule.drift=0.05"],
    "skfolio": ["allocation=skfolio", *SHORT],
    "sleeves": ["strategy=[momentum,buy_and_hold]", "portfolio=risk_parity", "sleeve_caps={buy_and_hold:0.4}"],
    "stocks_lots_vwap": ["data=stocks", "strategy=buy_and_hold", "broker.lot_size=100", "execution=vwap"],
    "conservative": ["risk=conservative"],
    "long_short_weekly": ["experiment=long_short", "schedule.rebalance=weekly"],
    "walkforward": ["walkforward=momentum_lookback"],
    "sweep": ["-m", "strategy.momentum.lookback=126,252", "allocation=equal_weight,inverse_vol"],
}
# old module path -> new, as text in configs and reports (issue 15: folders named as their stages)
MOVED = {"plugins." + "strategies.": "plugins.strategy.", "plugins." + "brokers.": "plugins.broker.",
         "plugins.allocation." + "skfolio_adapter.": "plugins.allocation.skfolio.",
         "pipeline." + "sweep.SweepSummary": "pipeline.research.sweep.SweepSummary",
         **{f"pipeline/{old}.py": f"pipeline/{new}.py" for old, new in (
             ("intraday", "core/intraday"), ("engine", "backtest/engine"), ("live", "live/runner"),
             ("report", "report/tearsheet"), ("recorder", "results/recorder"), ("tca", "results/tca"),
             ("portfolio", "decision/targets"), ("schedule", "core/schedule"), ("market", "core/market"))}}
VOLATILE = {"hydra.yaml", "run.log", "multirun.yaml"}  # Hydra's own, with paths and clocks
# config keys added since the recording, with the value that keeps the behaviour recorded
# (issue 15.6: the report group's section list, the page's order before it was configurable)
ADDED = {"report": {"sections": ["metrics", "caveats", "equity", "drawdowns", "rolling", "monthly", "weights",
                                 "attribution", "costs", "execution", "config"]}}
# the same keys as YAML writes them inside their node (Hydra's config.yaml, report.html's config)
# top-level keys added since, at the value that keeps the behaviour recorded (issue 16: exits=none)
ADDED_TOP = {"exits": {}}
ADDED_YAML = ["".join(f"\n  {key}:" + "".join(f"\n  - {v}" for v in value) for key, value in node.items())
              for node in ADDED.values()]
# top-level nodes added since, as Hydra's config.yaml writes them at the value that keeps the
# recorded behaviour (issue 18.4: record.format; provenance leaves it out, a where-not-what key)
ADDED_NODES = ["record:\n  format: csv\n"]
# (issue 17: how a batched sweep stores and resumes its jobs, a top-level node of scalars)
ADDED_YAML.append("\nsweep:\n  keep: 10\n  resume: false")


def run_case(name: str, work: Path) -> dict[str, str]:
    args = CASES[name]
    out = work / name
    where = [f"hydra.sweep.dir={out}"] if "-m" in args else [f"out_dir={out}", f"hydra.run.dir={out}"]
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *args, *where, "progress=false"], cwd=work,
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"case {name} failed ({' '.join(args)}):\n{proc.stdout}\n{proc.stderr}")
    return {str(p.relative_to(out)): _digest(p, out) for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in VOLATILE}


def _digest(path: Path, out: Path) -> str:
    data = path.read_bytes()
    if path.name == "provenance.json":
        prov = json.loads(data)
        prov.pop("code_version", None)
        for name, value in ADDED_TOP.items():
            if prov.get("config", {}).get(name, None) == value:
                prov["config"].pop(name)
        for name, node in ADDED.items():
            mine = prov.get("config", {}).get(name, {})
            for key, value in node.items():
                if mine.get(key) == value:
                    mine.pop(key)
        data = json.dumps(prov, sort_keys=True).encode()
    if path.suffix in (".html", ".yaml", ".md", ".json", ".txt"):
        text = data.decode().replace(str(out), "<run>")
        # the commit, whole or its first ten digits, and whether the tree had uncommitted changes
        text = re.sub(r"\b([0-9a-f]{40}|[0-9a-f]{10})\b( \(uncommitted changes\))?", "<commit>", text)
        for old, new in MOVED.items():
            text = text.replace(old, new)
        for block in ADDED_YAML + ADDED_NODES:
            text = text.replace(block, "")
        for name, value in ADDED_TOP.items():  # as YAML writes them: one line at the top level
            text = text.replace(f"\n{name}: {json.dumps(value)}\n", "\n")
        data = text.encode()
    return hashlib.sha256(data).hexdigest()


def digests(names: list[str]) -> dict[str, dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="robo-golden-") as work:
        return {name: run_case(name, Path(work)) for name in names}


def differences(recorded: dict, now: dict) -> list[str]:
    lines = []
    for name in sorted(set(recorded) | set(now)):
        a, b = recorded.get(name, {}), now.get(name, {})
        for f in sorted(set(a) | set(b)):
            if a.get(f) != b.get(f):
                lines.append(f"{name}: {f} " + ("missing now" if f not in b else "new" if f not in a else "differs"))
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help="record the digests in tests/golden/digests.json")
    p.add_argument("cases", nargs="*", help="only these cases (default: all)")
    args = p.parse_args(argv)
    now = digests(args.cases or list(CASES))
    if args.write:
        RECORD.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
        print(f"recorded {sum(map(len, now.values()))} files of {len(now)} cases in {RECORD}")
        return 0
    diff = differences({k: v for k, v in json.loads(RECORD.read_text()).items() if k in now}, now)
    print("\n".join(diff) if diff else f"unchanged: {sum(map(len, now.values()))} files of {len(now)} cases")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
