"""Metric effects, positions and the writers that apply them exactly once."""
