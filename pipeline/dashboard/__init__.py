"""The live dashboard's server and a finished run's replay."""
