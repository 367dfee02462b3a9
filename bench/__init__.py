"""Benchmarks of the worker against baselines run in the same process (``python -m bench``),
and a fleet of hosts in network namespaces under network faults (``python -m bench.fleet``)."""
