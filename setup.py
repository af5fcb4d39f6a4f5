"""The packages setuptools cannot find alone: conf/ ships as ``robo_trader_conf`` (pyproject.toml
maps the folder and its YAML files), so an installed robo-trader has its configs
(``pkg://robo_trader_conf``); pipeline, plugins and hydra_plugins (Hydra's registration of the batched launcher and
sweeper) are found as namespace packages."""

from setuptools import find_namespace_packages, setup

setup(packages=[*find_namespace_packages(include=["pipeline*", "plugins*", "hydra_plugins*"]), "robo_trader_conf"])
