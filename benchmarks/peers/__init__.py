"""Scripts that run inside the peers' virtualenvs (SAMMO 0.3.3, DSPy 3.4), started by
:mod:`benchmarks.harness.peer_compare` and :mod:`benchmarks.harness.sammo_compare` as files.

No module of sammo-core imports them: they import the peers, which sammo-core does not
install. They read a job as JSON on stdin and write the result as JSON on stdout.
"""
