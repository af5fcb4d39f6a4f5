"""robo-trader: ``python run.py [group=option ...] [key=value ...]`` (Hydra command line)."""

import hydra

from pipeline.cli import guarded, report_user_errors


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
@report_user_errors
def main(cfg):
    from pipeline.runner import main as task

    return task(cfg)


if __name__ == "__main__":
    guarded(main)
