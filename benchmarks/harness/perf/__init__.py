"""Where the time goes: framework overhead, client throughput and prefix reuse, in one run.

Three measurements, printed side by side as rich tables (and written as JSON with ``--json``),
after a first table of **rows per second** (compile + run + score) for a two-section program
with a zero-latency runner at 1,000, 10,000 and 100,000 rows (100,000 only in the full run),
with CPU time per row (``time.process_time``, robust to a loaded machine) and the memory a
100,000-row run allocates at its peak (``tracemalloc``), each beside the figure measured on the
code before render plans (:data:`BEFORE`).

a. **Framework overhead.** Rows per second for compile + render + call + parse + score with a
   zero-latency :class:`~sammo_core.runners.scripted.ScriptedRunner`, for a realistic program
   (a system message, task and guideline sections, 5 few-shot examples, the input) in three
   variants: ``plain`` (one input per call), ``minibatch`` (``inputs_per_call=8``) and ``knn``
   (examples picked per input by BM25). Phases are timed with ``time.perf_counter``; a
   ``cProfile`` run then splits the per-row work into render, runner, parse and the rest, and
   lists the functions with the most cumulative and self time.
b. **Throughput** of :class:`~sammo_core.runners.openai_runner.OpenAIRunner` against the loopback
   :class:`~sammo_core.testing.ChatServer` (50 ms latency by default) at concurrency 1, 8, 32
   and 128: wall time beside the ideal ``rows * latency / concurrency`` (the functions of
   :mod:`benchmarks.harness.throughput`).
c. **Prefix reuse** on the embedded llama.cpp model: one candidate's rows run back to back
   (grouped) versus interleaved with another candidate's (:mod:`benchmarks.harness.prefix_reuse`);
   skipped, with a message, when ``llama_cpp`` is not importable.

With ``--goals`` it prints, after the rows/s table, the goals of issue 12 in one table, each
figure beside the one before the issue (:data:`BEFORE`, :data:`BEFORE_GOALS`): rows/s and CPU
µs per row at 1k/10k/100k, the peak memory at 100k, the client's CPU per request and the
wall-time ratio to ideal of a 2,000-request run (:mod:`benchmarks.harness.throughput`) and of a
48-candidate beam search (:mod:`benchmarks.harness.search_speed`), with the load average.

This machine class is noisy: the figures are for reading, and nothing here asserts on time.

Run::

    python -m benchmarks.harness.perf          # 1,000 and 10,000 rows; 100 rows of prefix reuse
    python -m benchmarks.harness.perf --quick  # 300 rows, 2 waves, 3 rows of prefix reuse
    python -m benchmarks.harness.perf --json perf.json --no-prefix
    python -m benchmarks.harness.perf --only-rows     # just the rows/s table
    python -m benchmarks.harness.perf --goals         # issue 12's goals beside the figures before

One concept a module, each public name re-exported here: ``workload`` (the data, program and
scripted runner timed), ``rows`` (rows/s), ``overhead`` (a), ``sweep`` (b), ``prefix`` (c),
``goals`` (issue 12's goals) and ``cli`` (the command).
"""

from __future__ import annotations

from benchmarks.harness.perf.cli import (
    main,
)
from benchmarks.harness.perf.goals import (
    BEFORE_GOALS,
    Goal,
    measure_goals,
)
from benchmarks.harness.perf.overhead import (
    Breakdown,
    FunctionTime,
    OverheadFigure,
    measure_overhead,
    profile_breakdown,
)
from benchmarks.harness.perf.prefix import (
    PrefixReuseFigure,
    llama_cpp_missing,
    measure_prefix_reuse,
)
from benchmarks.harness.perf.rows import (
    BEFORE,
    RowsFigure,
    measure_memory,
    measure_rows,
    two_section_program,
)
from benchmarks.harness.perf.sweep import (
    measure_throughput,
)
from benchmarks.harness.perf.workload import (
    CONCURRENCY,
    LABELS,
    MINIBATCH,
    N_EXAMPLES,
    TASK,
    VARIANTS,
    realistic_program,
    review_table,
    scripted_reply,
)

__all__ = [
    "BEFORE",
    "BEFORE_GOALS",
    "CONCURRENCY",
    "LABELS",
    "MINIBATCH",
    "N_EXAMPLES",
    "TASK",
    "VARIANTS",
    "Breakdown",
    "FunctionTime",
    "Goal",
    "OverheadFigure",
    "PrefixReuseFigure",
    "RowsFigure",
    "llama_cpp_missing",
    "main",
    "measure_goals",
    "measure_memory",
    "measure_overhead",
    "measure_prefix_reuse",
    "measure_rows",
    "measure_throughput",
    "profile_breakdown",
    "realistic_program",
    "review_table",
    "scripted_reply",
    "two_section_program",
]
