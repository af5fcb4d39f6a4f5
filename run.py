"""robo-trader: ``python run.py [group=option ...] [key=value ...]`` (Hydra command line)."""

import os

# The allocators solve many small problems; BLAS threads only contend with each other and with
# the other jobs of a sweep (200-asset risk parity: 1.1 ms per decision on one thread, 50 ms on
# two busy ones). Set before numpy loads; an explicit setting in the environment wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import hydra  # noqa: E402

from pipeline.app.cli import guarded, report_user_errors  # noqa: E402


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
@report_user_errors
def main(cfg):
    from pipeline.app.runner import main as task

    return task(cfg)


if __name__ == "__main__":
    guarded(main)
