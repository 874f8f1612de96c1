"""Benchmarks at realistic scale (`python -m bench` runs them all; see bench/__main__.py)."""
