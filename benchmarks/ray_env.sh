#!/usr/bin/env bash
# The Ray launcher in an environment of its own: create a venv, install robo-trader with the
# `ray` extra, run a two-job sweep with hydra/launcher=ray and check its outputs. Prints PASS or
# FAIL on the last line and exits 0 or 1.
#
#   bash benchmarks/ray_env.sh                      # venv in /tmp/rayvenv (reused if it exists)
#   RAY_VENV=/path/venv RAY_FRESH=1 bash benchmarks/ray_env.sh   # recreate the venv first
#
# Why a separate environment: hydra-ray-launcher pins cloudpickle<3, while joblib>=1.6 (our main
# environment's joblib) requires cloudpickle>=3. Resolved from scratch, pip picks joblib 1.5.x
# (which vendors its own cloudpickle) and everything installs; added to an existing environment,
# it downgrades cloudpickle under joblib 1.6 and breaks it. The install downloads Ray (~1.3 GB
# venv), so this is not part of the default test run (see tests/test_ray_launcher.py).
#
# Side effects outside the venv: `pip install -e` refreshes the git-ignored robo_trader.egg-info
# in the repository, and Ray writes its session files under /tmp/ray and a local auth token in
# ~/.ray. Variables: PYTHON (interpreter for the venv, default python3, >= 3.11), RAY_VENV,
# RAY_FRESH=1, RAY_SWEEP_DIR (default: a new temporary folder, removed on PASS).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="${RAY_VENV:-/tmp/rayvenv}"
SWEEP="${RAY_SWEEP_DIR:-$(mktemp -d -t raysweep.XXXXXX)}"

fail() { echo "ray_env: $*" >&2; echo "FAIL"; exit 1; }

if [[ "${RAY_FRESH:-0}" == 1 ]]; then rm -rf "$VENV"; fi
if [[ ! -x "$VENV/bin/python" ]]; then
    echo "ray_env: creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV" || fail "could not create the venv"
fi
PY="$VENV/bin/python"

echo "ray_env: installing robo-trader[ray] into $VENV"
"$PY" -m pip install -q --disable-pip-version-check -e "$ROOT[ray]" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory"
[[ "${PIPESTATUS[0]}" == 0 ]] || fail "pip install -e '$ROOT[ray]' failed"
"$PY" -m pip check || fail "pip check reports broken requirements"
"$PY" - <<'EOF' || fail "hydra_ray_launcher does not import"
import importlib.metadata as m
import hydra_plugins.hydra_ray_launcher  # noqa: F401
print("ray_env: " + "  ".join(f"{p} {m.version(p)}" for p in
      ("hydra-ray-launcher", "ray", "cloudpickle", "joblib", "submitit", "aiohttp", "hydra-core")))
EOF

echo "ray_env: sweep with hydra/launcher=ray into $SWEEP"
rm -rf "$SWEEP"
(cd "$ROOT" && "$PY" run.py -m hydra/launcher=ray \
    +hydra.launcher.ray.init.num_cpus=2 +hydra.launcher.ray.init.include_dashboard=false \
    strategy.momentum.lookback=60,120 progress=false "hydra.sweep.dir=$SWEEP") \
    || fail "the Ray sweep exited non-zero"

for f in 0/metrics.json 1/metrics.json sweep.csv; do
    [[ -s "$SWEEP/$f" ]] || fail "missing $SWEEP/$f"
done
"$PY" - "$SWEEP/sweep.csv" <<'EOF' || fail "sweep.csv does not record two completed jobs"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [r["status"] for r in rows] == ["completed", "completed"], rows
EOF

[[ -z "${RAY_SWEEP_DIR:-}" ]] && rm -rf "$SWEEP"
echo "PASS"
