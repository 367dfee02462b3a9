"""Benchmarks of the worker against baselines run in the same process: ``python -m bench``."""
