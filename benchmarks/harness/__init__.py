"""The maintainers' harness: performance and quality measurements that print figures.

Nothing here is part of what users run (``sammo-core bench`` and ``data`` live one level up):
``perf`` and ``throughput`` (speed goals), ``search_speed`` and ``cli_speed`` (how busy a
search keeps its slots), ``prefix_reuse``, ``racing_compare``, ``scored_compare`` and
``soft_compare`` (measurements on the embedded models), and the peer comparisons
(``sammo_compare``, ``peer_compare``, ``peer_env``), which run the scripts of
:mod:`benchmarks.peers` in the peers' own virtualenvs. ``synthetic_server`` is the loopback
model they share.
"""
