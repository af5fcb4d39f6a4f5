"""robo-trader's engine: contracts, runner, simulation, accounting, metrics, recording.

Nothing here imports a concrete plugin: plugins import these contracts, and the runner gets
plugins from the config (``_target_``) or from the registry by name.
"""
