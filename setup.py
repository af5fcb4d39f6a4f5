"""The packages setuptools cannot find alone: conf/ ships as ``robo_trader_conf`` (pyproject.toml
maps the folder and its YAML files), so an installed robo-trader has its configs
(``pkg://robo_trader_conf``); pipeline and plugins are found as pyproject's find table found them."""

from setuptools import find_namespace_packages, setup

setup(packages=[*find_namespace_packages(include=["pipeline*", "plugins*"]), "robo_trader_conf"])
