"""robo-trader: ``python run.py [group=option ...] [key=value ...]`` (Hydra command line)."""

from pipeline.app.cli import guarded, one_blas_thread, report_user_errors  # loads no numpy

one_blas_thread()

import hydra  # noqa: E402


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
@report_user_errors
def main(cfg):
    from pipeline.app.runner import main as task

    return task(cfg)


if __name__ == "__main__":
    guarded(main)
