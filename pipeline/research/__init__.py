"""Sweeps and their summary, walk-forward, overfitting statistics."""
