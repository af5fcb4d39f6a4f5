"""Where the configs are: the checkout's ``conf/``, or the installed package ``robo_trader_conf``.

``conf/`` is shipped as the package ``robo_trader_conf`` (pyproject.toml maps it), so a wheel
carries every YAML file and Hydra reads them through ``pkg://robo_trader_conf``. A checkout's
own ``conf/`` beside ``pipeline/`` comes first: with robo-trader installed in editable mode
from another checkout, the package would name that checkout's files, not the ones next to
the code that runs.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

PACKAGE = "robo_trader_conf"
_CHECKOUT = Path(__file__).resolve().parents[2] / "conf"


def in_checkout() -> bool:
    return (_CHECKOUT / "config.yaml").is_file()


def conf_dir() -> Path:
    """The folder of config groups (``conf/`` in a checkout, the package's folder when installed)."""
    if in_checkout():
        return _CHECKOUT
    return Path(str(importlib.resources.files(PACKAGE)))


def search_path() -> str:
    """The primary config path for Hydra: the checkout's folder, else ``pkg://robo_trader_conf``."""
    return str(_CHECKOUT) if in_checkout() else f"pkg://{PACKAGE}"
