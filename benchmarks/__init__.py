"""Benchmarks, split by who uses them.

- Here: what users run. ``sammo-core bench`` (:mod:`benchmarks.cli_bench`: suites, reports,
  seeds) and ``sammo-core data`` (:mod:`benchmarks.cli_data`: datasets, fetch).
- :mod:`benchmarks.harness`: the maintainers' measurements (speed goals, the embedded models'
  figures, peer comparisons), run as ``python -m benchmarks.harness.NAME``.
- :mod:`benchmarks.peers`: scripts that run inside the peers' own virtualenvs; no module
  imports them.
"""
