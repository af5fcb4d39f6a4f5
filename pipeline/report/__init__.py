"""Presentation of a finished run or sweep: the tearsheet and the terminal summary. Reads results or a run folder only."""
