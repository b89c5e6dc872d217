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
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import importlib.util
import os
import platform
import pstats
import random
import re
import sys
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from benchmarks.harness import prefix_reuse, search_speed, throughput
from benchmarks.harness.synthetic_server import SyntheticServer
from renderers import Record, get_data_format
from sammo_core.components import Examples, GenerateText, InputData, MetaPrompt, Output, Section
from sammo_core.data import DataTable
from sammo_core.graph import compile
from sammo_core.objectives import Accuracy, evaluate
from sammo_core.runners.base import LLMRequest, LLMResult, Runner
from sammo_core.runners.scripted import ScriptedRunner

__all__ = [
    "BEFORE",
    "BEFORE_GOALS",
    "VARIANTS",
    "Breakdown",
    "Goal",
    "OverheadFigure",
    "PrefixReuseFigure",
    "RowsFigure",
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
    "two_section_program",
]

VARIANTS = ("plain", "minibatch", "knn")
MINIBATCH = 8
N_EXAMPLES = 5
CONCURRENCY = 32  # rows in flight in the overhead runs (the default of FunctionGraph.run)
LABELS = ("positive", "negative", "neutral")
TASK = "Classify the sentiment of a product review as positive, negative or neutral."

_SUBJECTS = ("battery", "screen", "keyboard", "delivery", "price", "manual", "camera", "speaker")
_VERDICTS = (
    "works perfectly",
    "broke after a week",
    "is fine I guess",
    "exceeded my hopes",
    "was a waste of money",
    "does what it says",
)
_CONTEXT = (
    "I bought it for my daughter",
    "after reading many reviews",
    "on sale last month",
    "to replace an older model",
    "as a gift",
)
_INPUT_ID = re.compile(r"^Input \[(\d+)\]:", re.MULTILINE)
_PLAIN = get_data_format("plain")


# -- the workload --------------------------------------------------------------------------------


def review_table(rows: int, seed: int = 0) -> DataTable:
    """``rows`` labelled product reviews, drawn with ``seed``.

    >>> review_table(2)[0].input
    'Review 0: The camera exceeded my hopes; I bought it for my daughter.'
    >>> review_table(2)[0].output
    'positive'
    """
    rng = random.Random(seed)
    inputs, outputs = [], []
    for i in range(rows):
        verdict = rng.randrange(len(_VERDICTS))
        inputs.append(
            f"Review {i}: The {rng.choice(_SUBJECTS)} {_VERDICTS[verdict]}; {rng.choice(_CONTEXT)}."
        )
        outputs.append(LABELS[verdict % len(LABELS)])
    return DataTable(inputs, outputs)


def realistic_program(variant: str, pool: DataTable) -> Output:
    """The benchmark program: system message, two text sections, 5 examples, the input.

    ``variant``: ``plain``, ``minibatch`` (8 inputs per call) or ``knn`` (BM25 examples).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section(
                        "Task",
                        [TASK],
                        id="task",
                    ),
                    Section(
                        "Guidelines",
                        [
                            "Judge the customer's overall attitude rather than single words.",
                            "Treat sarcasm as negative only when it is unmistakable.",
                            "A review that only states facts is neutral.",
                        ],
                        id="guidelines",
                    ),
                    Section(
                        "Examples",
                        [
                            Examples(
                                pool,
                                n=N_EXAMPLES,
                                selection="knn" if variant == "knn" else "first",
                            )
                        ],
                        id="examples",
                    ),
                    Section("Input", [InputData()], id="input"),
                ],
                data_format="plain",
            ),
            system="You are a careful annotator. Answer with the label only.",
        ),
        parser="auto",
        inputs_per_call=MINIBATCH if variant == "minibatch" else 1,
    )


def scripted_reply(request: LLMRequest) -> str:
    """A well-formed answer for every input of the prompt (always ``positive``)."""
    ids = _INPUT_ID.findall(request.messages[-1].content)
    if not ids:
        return "positive"
    return _PLAIN.render_outputs([Record(int(i), None, "positive") for i in ids])


class _TimedRunner(Runner):
    """Counts calls and the seconds spent inside the wrapped runner's ``generate``."""

    def __init__(self, inner: Runner) -> None:
        self.inner = inner
        self.model = inner.model
        self.seconds = 0.0
        self.calls = 0

    async def generate(self, request: LLMRequest) -> LLMResult:
        start = time.perf_counter()
        try:
            return await self.inner.generate(request)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1


# -- rows per second ------------------------------------------------------------------------------

#: Measured once on the code before render plans (commit 5b10a95) with ``--only-rows``, on
#: the 2-core development machine, loaded by other work: rows/s (wall), CPU µs per row, and
#: the peak MiB a 100,000-row run allocates.
BEFORE: dict[str, float] = {
    "rows_per_second_1000": 676,
    "rows_per_second_10000": 663,
    "rows_per_second_100000": 434,
    "cpu_us_per_row_1000": 668.1,
    "cpu_us_per_row_10000": 693.8,
    "cpu_us_per_row_100000": 1022.8,
    "peak_mib_100000": 244.5,
}


def two_section_program() -> Output:
    """The rows/s program: a task section and an input section, answers parsed by id.

    >>> print(two_section_program().child.prompt.children[0].title)
    Task
    """
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", [TASK]),
                    Section("Input", [InputData()]),
                ],
                data_format="plain",
            )
        ),
        parser="auto",
    )


@dataclasses.dataclass(frozen=True)
class RowsFigure:
    """One compile + run + score pass over ``rows`` rows: wall and CPU seconds, and those of
    making the data table and the program (``setup_*``), which :data:`BEFORE` timed too."""

    rows: int
    wall_s: float
    cpu_s: float
    setup_wall_s: float = 0.0
    setup_cpu_s: float = 0.0

    @property
    def rows_per_second_with_setup(self) -> float:
        """Rows/s with the set-up inside the clock, as :data:`BEFORE` was measured."""
        wall = self.wall_s + self.setup_wall_s
        return self.rows / wall if wall > 0 else float("inf")

    @property
    def cpu_us_per_row_with_setup(self) -> float:
        return 1e6 * (self.cpu_s + self.setup_cpu_s) / self.rows

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.wall_s if self.wall_s > 0 else float("inf")

    @property
    def cpu_us_per_row(self) -> float:
        return 1e6 * self.cpu_s / self.rows

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "rows_per_second": self.rows_per_second,
            "cpu_us_per_row": self.cpu_us_per_row,
            "rows_per_second_with_setup": self.rows_per_second_with_setup,
            "cpu_us_per_row_with_setup": self.cpu_us_per_row_with_setup,
        }


def _rows_pass(data: DataTable, program: Output) -> None:
    results = compile(program).run_sync(data, ScriptedRunner(default="positive"))
    evaluate(results, [Accuracy()])


def measure_rows(rows: int) -> RowsFigure:
    """Time compile + run + score of :func:`two_section_program` over ``rows`` rows.

    The user's inputs, the data table and the program, are made before the clock starts,
    as a caller has them before a run. Earlier figures timed the table's making too (until
    2026-11, about 5 µs a row) and the program's (until 2026-11-29: about 5 ms for its
    seven pyglove nodes, checked as they are built; 5 µs a row at 1,000 rows, none at
    100,000).

    >>> measure_rows(20).rows
    20
    """
    if rows < 1:
        raise ValueError(f"rows must be >= 1; got {rows}")
    _rows_pass(review_table(min(rows, 50)), two_section_program())  # warm up: imports, regexes
    wall, cpu = time.perf_counter(), time.process_time()
    data, program = review_table(rows), two_section_program()  # made before the clock starts
    setup_wall, setup_cpu = time.perf_counter() - wall, time.process_time() - cpu
    wall, cpu = time.perf_counter(), time.process_time()
    _rows_pass(data, program)
    run_wall, run_cpu = time.perf_counter() - wall, time.process_time() - cpu
    return RowsFigure(rows, run_wall, run_cpu, setup_wall, setup_cpu)


def measure_memory(rows: int) -> float:
    """Peak MiB allocated (``tracemalloc``) by compile + run + score over ``rows`` rows."""
    _rows_pass(review_table(min(rows, 50)), two_section_program())
    tracemalloc.start()
    try:
        # The data table and the program counted too, as in BEFORE.
        _rows_pass(review_table(rows), two_section_program())
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _rows_table(figures: Sequence[RowsFigure], memory: tuple[int, float] | None) -> Table:
    table = Table(
        title="rows/s: two-section program, zero-latency runner (before: old code, which timed "
        "making the table and the program too; so do the 'with set-up' columns)"
    )
    for column in (
        "rows",
        "rows/s",
        "with set-up",
        "before",
        "CPU µs/row",
        "with set-up",
        "before",
        "wall s",
    ):
        table.add_column(column, justify="right")

    def before(key: str, fmt: str) -> str:
        return format(BEFORE[key], fmt) if key in BEFORE else "-"

    for f in figures:
        table.add_row(
            f"{f.rows:,}",
            f"{f.rows_per_second:,.0f}",
            f"{f.rows_per_second_with_setup:,.0f}",
            before(f"rows_per_second_{f.rows}", ",.0f"),
            f"{f.cpu_us_per_row:,.1f}",
            f"{f.cpu_us_per_row_with_setup:,.1f}",
            before(f"cpu_us_per_row_{f.rows}", ",.1f"),
            f"{f.wall_s:.2f}",
        )
    if memory is not None:
        rows, mib = memory
        table.add_row(
            f"peak MiB, {rows:,} rows",
            f"{mib:,.1f}",
            "",
            before(f"peak_mib_{rows}", ",.1f"),
            "",
            "",
            "",
            "",
        )
    return table


# -- a. framework overhead -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OverheadFigure:
    """One timed pass of a program over ``rows`` rows with a zero-latency runner."""

    variant: str
    rows: int
    calls: int
    scored_rows: int
    compile_s: float
    run_s: float
    runner_s: float
    objective_s: float

    @property
    def total_s(self) -> float:
        return self.compile_s + self.run_s + self.objective_s

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.total_s if self.total_s > 0 else float("inf")

    @property
    def us_per_row(self) -> float:
        return 1e6 * self.total_s / self.rows

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "total_s": self.total_s,
            "rows_per_second": self.rows_per_second,
            "us_per_row": self.us_per_row,
        }


async def _timed_pass(program: Output, data: DataTable, runner: Runner) -> tuple[float, ...]:
    start = time.perf_counter()
    graph = compile(program)
    compiled = time.perf_counter()
    results = await graph.run(data, runner, max_concurrency=CONCURRENCY)
    ran = time.perf_counter()
    scores = evaluate(results, [Accuracy()])
    scored = time.perf_counter()
    return compiled - start, ran - compiled, scored - ran, float(scores["accuracy"].n)


def measure_overhead(variant: str, rows: int, seed: int = 0) -> OverheadFigure:
    """Time compile, run (render + call + parse) and scoring of ``rows`` rows.

    >>> figure = measure_overhead("minibatch", 16)
    >>> figure.rows, figure.calls, figure.scored_rows
    (16, 2, 16)
    """
    if rows < 1:
        raise ValueError(f"rows must be >= 1; got {rows}")
    data = review_table(rows, seed=seed)
    program = realistic_program(variant, review_table(50, seed=seed + 1))
    # A small untimed pass first: the first compile imports networkx, the first render
    # compiles regexes; the figures are for the steady state.
    warm = _TimedRunner(ScriptedRunner(default=scripted_reply))
    asyncio.run(_timed_pass(program, data[: min(rows, 16)], warm))
    runner = _TimedRunner(ScriptedRunner(default=scripted_reply, model="zero-latency"))
    compile_s, run_s, objective_s, scored = asyncio.run(_timed_pass(program, data, runner))
    return OverheadFigure(
        variant, rows, runner.calls, int(scored), compile_s, run_s, runner.seconds, objective_s
    )


@dataclasses.dataclass(frozen=True)
class FunctionTime:
    """One profiled function: where it is, how often it ran, its cumulative and self time."""

    name: str
    calls: int
    cumulative_s: float
    self_s: float


@dataclasses.dataclass(frozen=True)
class Breakdown:
    """Where one profiled pass spent its time (profiler overhead included, so use the shares)."""

    variant: str
    rows: int
    total_s: float
    phases: dict[str, float]
    top_cumulative: list[FunctionTime]
    top_self: list[FunctionTime]

    def shares(self) -> dict[str, float]:
        return {k: v / self.total_s if self.total_s > 0 else 0.0 for k, v in self.phases.items()}

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "shares": self.shares()}


# (path suffix, function name) of the functions whose cumulative time makes up each phase.
_PHASES: dict[str, tuple[tuple[str, str], ...]] = {
    "compile": (("sammo_core/graph.py", "__init__"),),
    "render": (("sammo_core/components.py", "request"),),
    "runner": (("sammo_core/runners/scripted.py", "generate"),),
    "parse": (("sammo_core/components.py", "parse"),),
    "result rows": (("sammo_core/graph.py", "_rows_for"), ("sammo_core/results.py", "from_rows")),
    "objective": (("sammo_core/objectives.py", "evaluate"),),
}
_PROJECT = ("sammo_core", "renderers", "mutators", "search")


def _label(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    if filename == "~":  # built-ins
        return name
    parts = Path(filename).parts
    for i, part in enumerate(parts):
        if part in (*_PROJECT, "site-packages", "asyncio", "pyglove"):
            start = i + 1 if part == "site-packages" else i
            return f"{'/'.join(parts[start:])}:{line}({name})"
    return f"{Path(filename).name}:{line}({name})"


def _in_project(key: tuple[str, int, str]) -> bool:
    parts = Path(key[0]).parts
    return "site-packages" not in parts and any(p in _PROJECT for p in parts)


def profile_breakdown(variant: str, rows: int, top: int = 12, seed: int = 0) -> Breakdown:
    """Profile one pass with :mod:`cProfile` and split it into phases.

    ``phases`` holds the cumulative seconds of compile, render (``GenerateText.request``),
    runner, parse, building result rows, the objective, and ``scheduling + rest``: the part
    of the pass outside all of these (the event loop, tasks, semaphores, ``RunContext``).
    ``top_cumulative`` lists this project's functions with the most cumulative time,
    ``top_self`` all functions (libraries and built-ins too) with the most self time.
    """
    data = review_table(rows, seed=seed)
    program = realistic_program(variant, review_table(50, seed=seed + 1))
    runner = ScriptedRunner(default=scripted_reply, model="zero-latency")
    asyncio.run(_timed_pass(program, data[: min(rows, 16)], ScriptedRunner(default=scripted_reply)))
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    asyncio.run(_timed_pass(program, data, runner))
    profiler.disable()
    total = time.perf_counter() - start
    # pstats keeps (calls, primitive calls, self, cumulative, callers) per function
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]]
    raw = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    phases: dict[str, float] = {}
    for phase, targets in _PHASES.items():
        phases[phase] = sum(
            ct
            for (filename, _, name), (_, _, _, ct, _) in raw.items()
            if any(
                name == fn and filename.replace(os.sep, "/").endswith(suffix)
                for suffix, fn in targets
            )
        )
    phases["scheduling + rest"] = max(0.0, total - sum(phases.values()))

    def listing(keys: Sequence[tuple[str, int, str]]) -> list[FunctionTime]:
        return [FunctionTime(_label(k), raw[k][1], raw[k][3], raw[k][2]) for k in keys]

    by_cumulative = sorted((k for k in raw if _in_project(k)), key=lambda k: -raw[k][3])
    by_self = sorted(raw, key=lambda k: -raw[k][2])
    return Breakdown(
        variant, rows, total, phases, listing(by_cumulative[:top]), listing(by_self[:top])
    )


# -- b. throughput -------------------------------------------------------------------------------


def measure_throughput(
    base_url: str, concurrencies: Sequence[int], latency: float, waves: int
) -> list[throughput.Measurement]:
    """Time ``concurrency * waves`` requests at each concurrency (ideal: ``waves * latency``)."""
    if waves < 1:
        raise ValueError(f"waves must be >= 1; got {waves}")

    async def sweep() -> list[throughput.Measurement]:
        return [
            await throughput.measure(base_url, c * waves, c, latency, offset=i * 1_000_000)
            for i, c in enumerate(concurrencies)
        ]

    return asyncio.run(sweep())


def _measurement_dict(m: throughput.Measurement) -> dict[str, Any]:
    return {
        **dataclasses.asdict(m),
        "ideal": m.ideal,
        "efficiency": m.efficiency,
        "requests_per_second": m.requests_per_second,
        "cpu_ms_per_request": m.cpu_ms_per_request,
    }


# -- c. prefix reuse -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PrefixReuseFigure:
    """Two candidates' rows on the embedded model, run three ways (seconds for both)."""

    rows: int
    model: str
    prompt_tokens: int
    grouped_s: float
    interleaved_s: float
    gathered_s: float
    same_text_interleaved: int
    same_text_gathered: int

    @property
    def per_candidate(self) -> dict[str, float]:
        """Seconds for one candidate's ``rows`` rows, each way."""
        return {
            "grouped": self.grouped_s / 2,
            "interleaved": self.interleaved_s / 2,
            "gathered": self.gathered_s / 2,
        }

    @property
    def speedup(self) -> float:
        """How many times faster grouped rows run than interleaved ones."""
        return self.interleaved_s / self.grouped_s if self.grouped_s > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "per_candidate": self.per_candidate,
            "speedup": self.speedup,
        }


def llama_cpp_missing() -> str | None:
    """Why the prefix-reuse part cannot run here, or ``None`` when it can."""
    if importlib.util.find_spec("llama_cpp") is None:
        return 'llama_cpp is not importable; install the local extra: pip install -e ".[local]"'
    return None


def measure_prefix_reuse(rows: int, n_threads: int | None = None) -> PrefixReuseFigure:
    """Run ``rows`` rows of two candidates grouped, interleaved and gathered (see module doc)."""
    from sammo_core.runners.local import LlamaCppRunner

    a, b = prefix_reuse.build_requests(rows)
    grouped = a + b
    interleaved = [r for pair in zip(a, b, strict=True) for r in pair]

    async def run() -> PrefixReuseFigure:
        runner = LlamaCppRunner(n_ctx=2048, n_threads=n_threads)
        try:
            await runner.generate(b[0])  # warm up, leaving B's prefix in the KV cache
            t_grouped, res_grouped = await prefix_reuse.run_one_by_one(runner, grouped)
            t_inter, res_inter = await prefix_reuse.run_one_by_one(runner, interleaved)
            t_gather, res_gather = await prefix_reuse.run_at_once(runner, interleaved)
        finally:
            await runner.aclose()
        by_request = {id(r): x.text for r, x in zip(grouped, res_grouped, strict=True)}

        def same(results: Sequence[LLMResult]) -> int:
            pairs = zip(interleaved, results, strict=True)
            return sum(by_request[id(r)] == x.text for r, x in pairs)

        return PrefixReuseFigure(
            rows,
            runner.model,
            res_grouped[0].prompt_tokens,
            t_grouped,
            t_inter,
            t_gather,
            same(res_inter),
            same(res_gather),
        )

    return asyncio.run(run())


# -- output --------------------------------------------------------------------------------------


def _overhead_table(figures: Sequence[OverheadFigure]) -> Table:
    table = Table(title=f"a. framework overhead (zero-latency runner, concurrency {CONCURRENCY})")
    columns = [
        *("variant", "rows", "calls", "compile ms", "run s", "of which runner s"),
        *("objective s", "total s", "rows/s", "µs/row", "vs plain"),
    ]
    for column in columns:
        table.add_column(column, justify="left" if column == "variant" else "right")
    plain = {f.rows: f.rows_per_second for f in figures if f.variant == "plain"}
    for f in figures:
        ratio = f.rows_per_second / plain[f.rows] if f.rows in plain else float("nan")
        table.add_row(
            f.variant,
            f"{f.rows:,}",
            f"{f.calls:,}",
            f"{1000 * f.compile_s:.1f}",
            f"{f.run_s:.3f}",
            f"{f.runner_s:.3f}",
            f"{f.objective_s:.3f}",
            f"{f.total_s:.3f}",
            f"{f.rows_per_second:,.0f}",
            f"{f.us_per_row:,.0f}",
            f"{ratio:.2f}x",
        )
    return table


def _phase_table(breakdowns: Sequence[Breakdown]) -> Table:
    rows = breakdowns[0].rows if breakdowns else 0
    table = Table(title=f"a. where the time goes (cProfile, {rows:,} rows, share of the pass)")
    table.add_column("phase")
    for b in breakdowns:
        table.add_column(b.variant, justify="right")
    phases = list(breakdowns[0].phases) if breakdowns else []
    for phase in phases:
        table.add_row(phase, *(f"{b.shares()[phase]:.1%}" for b in breakdowns))
    table.add_row("pass (profiled) s", *(f"{b.total_s:.3f}" for b in breakdowns))
    return table


def _functions_table(title: str, functions: Sequence[FunctionTime]) -> Table:
    table = Table(title=title)
    for column in ("function", "calls", "cumulative s", "self s"):
        table.add_column(column, justify="left" if column == "function" else "right")
    for f in functions:
        table.add_row(f.name, f"{f.calls:,}", f"{f.cumulative_s:.3f}", f"{f.self_s:.3f}")
    return table


def _prefix_table(figure: PrefixReuseFigure) -> Table:
    title = (
        f"c. prefix reuse: {figure.model}, one candidate's {figure.rows} rows "
        f"(~{figure.prompt_tokens} prompt tokens per call)"
    )
    table = Table(title=title)
    for column in ("order", "s per candidate", "s/row", "vs grouped", "same text as grouped"):
        table.add_column(column, justify="left" if column == "order" else "right")
    same = {"grouped": "-", "interleaved": figure.same_text_interleaved}
    same["gathered"] = figure.same_text_gathered
    grouped = figure.per_candidate["grouped"]
    for order, seconds in figure.per_candidate.items():
        table.add_row(
            order,
            f"{seconds:.2f}",
            f"{seconds / figure.rows:.3f}",
            f"{seconds / grouped:.2f}x" if grouped > 0 else "-",
            f"{same[order]}/{2 * figure.rows}" if order != "grouped" else "-",
        )
    return table


# -- the speed goals of issue 12, beside the figures before it -----------------------------------

#: The figures of the code before issue 12 (commit 5b10a95) with the same commands, on the
#: 2-core development machine: the rows/s are in :data:`BEFORE`; the client's CPU per
#: request was 1.4 ms on a quiet machine; the rest were measured on 2026-11-29 back to back
#: with the code after it, at a load average of about 9 (``benchmarks.harness.throughput --rows
#: 2000``: 2.00-2.24 ms/request, 24.4-27.2 % of ideal; ``benchmarks.harness.search_speed``: 28.0 s
#: for an ideal of 4.15 s, 6.76x, 9.1 s of client CPU; at a load of about 5 before: 6.2-6.6x).
BEFORE_GOALS: dict[str, str] = {
    "cpu_ms_per_request": "1.4 quiet; 2.00-2.24 at load 9",
    "run_2000": "24-27 % of ideal at load 9",
    "search_48": "6.76x (28.0 s) at load 9; 6.2-6.6x at load 5",
}


@dataclasses.dataclass(frozen=True)
class Goal:
    """One goal of issue 12: the figure measured now, the figure before, the target."""

    figure: str
    now: str
    before: str
    target: str
    met: bool


def measure_goals(
    rows: Sequence[RowsFigure],
    memory: tuple[int, float] | None,
    run: throughput.Measurement,
    search: search_speed.SearchSpeed,
) -> list[Goal]:
    """The goals of issue 12 from the figures measured (see :func:`main` with ``--goals``).

    Rows per second are wall time with a zero-latency runner: one process, one core, so
    ``1e6 / CPU µs per row`` is what a quiet machine gives; on a loaded one the wall figure
    falls with the load and the CPU figure much less.

    >>> run = throughput.Measurement("openai", 2000, 32, 0.05, wall=3.3, cpu=0.6)
    >>> search = search_speed.SearchSpeed(48, 50, 32, 0.05, 2656, 32, wall_s=5.9, cpu_s=2.5)
    >>> goals = measure_goals([RowsFigure(1000, 0.04, 0.035)], (100_000, 120.0), run, search)
    >>> [(g.figure, g.met) for g in goals][:2]
    [('rows/s, 1,000 rows', True), ('CPU µs per row, 1,000 rows', True)]
    >>> goals[-1].now, goals[-1].met
    ('1.42x (5.90 s, ideal 4.15 s; CPU 2.50 s)', True)
    """
    out: list[Goal] = []
    for f in rows:
        out.append(
            Goal(
                f"rows/s, {f.rows:,} rows",
                f"{f.rows_per_second:,.0f}",
                f"{BEFORE.get(f'rows_per_second_{f.rows}', float('nan')):,.0f}",
                ">= 20,000",
                f.rows_per_second >= 20_000,
            )
        )
        out.append(
            Goal(
                f"CPU µs per row, {f.rows:,} rows",
                f"{f.cpu_us_per_row:,.1f}",
                f"{BEFORE.get(f'cpu_us_per_row_{f.rows}', float('nan')):,.1f}",
                "<= 50 (20,000/s on one core)",
                f.cpu_us_per_row <= 50,
            )
        )
    if len(rows) > 1:
        spread = max(f.cpu_us_per_row for f in rows) / min(f.cpu_us_per_row for f in rows)
        before = BEFORE["cpu_us_per_row_100000"] / BEFORE["cpu_us_per_row_1000"]
        out.append(
            Goal(
                "CPU per row, largest / smallest of the sizes",
                f"{spread:.2f}",
                f"{before:.2f} (1k to 100k)",
                "flat (<= 1.25)",
                spread <= 1.25,
            )
        )
    if memory is not None:
        size, mib = memory
        before = BEFORE.get(f"peak_mib_{size}", float("nan"))
        out.append(
            Goal(f"peak MiB, {size:,} rows", f"{mib:,.1f}", f"{before:,.1f}", "reported", True)
        )
    out.append(
        Goal(
            f"client CPU ms per request ({run.rows:,} requests)",
            f"{run.cpu_ms_per_request:.2f}",
            BEFORE_GOALS["cpu_ms_per_request"],
            "<= 0.5",
            run.cpu_ms_per_request <= 0.5,
        )
    )
    out.append(
        Goal(
            f"run, {run.rows:,} rows, concurrency {run.concurrency}: ideal / wall",
            f"{run.efficiency:.0%} ({run.wall:.2f} s, ideal {run.ideal:.2f} s)",
            BEFORE_GOALS["run_2000"],
            ">= 90 % (quiet machine)",
            run.efficiency >= 0.9,
        )
    )
    out.append(
        Goal(
            f"beam search, {search.candidates} candidates: wall / ideal",
            f"{search.ratio:.2f}x ({search.wall_s:.2f} s, ideal {search.ideal_s:.2f} s; "
            f"CPU {search.cpu_s:.2f} s)",
            BEFORE_GOALS["search_48"],
            "<= 1.5x",
            search.ratio <= 1.5,
        )
    )
    return out


def _goals_table(goals: Sequence[Goal], load: str) -> Table:
    table = Table(title=f"issue 12: speed goals, now beside before (load average {load})")
    for column in ("figure", "now", "before issue 12", "goal", "met"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for g in goals:
        table.add_row(g.figure, g.now, g.before, g.target, "yes" if g.met else "no")
    return table


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    except OSError:  # pragma: no cover - not on this platform
        return "unknown"


def _run_and_search(latency: float) -> tuple[throughput.Measurement, search_speed.SearchSpeed]:
    """The 2,000-request run and the 48-candidate search at ``latency``, concurrency 32."""
    with throughput.serve(latency, "process") as base_url:
        run = asyncio.run(throughput.measure(base_url, 2000, 32, latency))
    args = search_speed.parser().parse_args(["--latency", str(latency)])
    with SyntheticServer(latency) as server:
        search = search_speed.measure(server, args)
    return run, search


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.harness.perf", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a first look within a minute on 2 cores: 300 rows (200 profiled), 2 waves, "
        "3 prefix-reuse rows",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write figures")
    parser.add_argument(
        "--rows", type=throughput.int_list, default=None, help="overhead sizes, e.g. 1000,10000"
    )
    parser.add_argument("--variants", default=",".join(VARIANTS), help="e.g. plain,knn")
    parser.add_argument("--profile-rows", type=int, default=None, help="rows per profiled pass")
    parser.add_argument("--latency", type=float, default=0.05, help="server seconds per request")
    parser.add_argument(
        "--concurrency",
        type=throughput.int_list,
        default=[1, 8, 32, 128],
        help="concurrency levels of part b (default 1,8,32,128)",
    )
    parser.add_argument("--waves", type=int, default=None, help="requests per slot (ideal/latency)")
    parser.add_argument("--prefix-rows", type=int, default=None, help="rows per candidate")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp CPU threads")
    parser.add_argument("--no-throughput", action="store_true", help="skip part b")
    parser.add_argument("--no-prefix", action="store_true", help="skip part c")
    parser.add_argument(
        "--only-rows", action="store_true", help="print only the rows/s table, then stop"
    )
    parser.add_argument(
        "--goals",
        action="store_true",
        help="the goals of issue 12 beside the figures before it: rows/s at 1k/10k/100k, "
        "CPU per request, a 2,000-row run and a 48-candidate search against ideal, then stop",
    )
    parser.add_argument(
        "--server", choices=("process", "thread"), default="process", help="where the server runs"
    )
    return parser


def _part_a(
    console: Console, variants: Sequence[str], sizes: Sequence[int], profile_rows: int
) -> dict[str, Any]:
    overhead = [measure_overhead(v, n) for n in sizes for v in variants]
    console.print(_overhead_table(overhead))
    breakdowns = [profile_breakdown(v, profile_rows) for v in variants]
    console.print(_phase_table(breakdowns))
    first = breakdowns[0]
    title = f"a. {first.variant}: project functions by cumulative time"
    console.print(_functions_table(title, first.top_cumulative))
    title = f"a. {first.variant}: all functions by self time"
    console.print(_functions_table(title, first.top_self))
    return {
        "overhead": [f.to_dict() for f in overhead],
        "breakdown": [b.to_dict() for b in breakdowns],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the three measurements, print them, and write JSON with ``--json``."""
    parser = _parser()
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        parser.error(f"--variants: unknown {unknown}; use some of {', '.join(VARIANTS)}")
    sizes: list[int] = args.rows or ([300] if args.quick else [1000, 10_000])
    profile_rows: int = args.profile_rows or (min(200, *sizes) if args.quick else min(sizes))
    waves: int = args.waves or (2 if args.quick else 20)
    prefix_rows: int = args.prefix_rows or (3 if args.quick else 100)
    if args.latency <= 0 or profile_rows < 1 or waves < 1 or prefix_rows < 1:
        parser.error("--latency must be > 0; --profile-rows, --waves, --prefix-rows >= 1")

    console = Console(width=max(Console().width, 110))
    report: dict[str, Any] = {"machine": _machine(), "quick": args.quick}
    row_sizes = [1000, 10_000] if args.quick else [1000, 10_000, 100_000]
    rows_figures = [measure_rows(n) for n in row_sizes]
    memory = None if args.quick else (100_000, measure_memory(100_000))
    console.print(_rows_table(rows_figures, memory))
    report["rows"] = [f.to_dict() for f in rows_figures]
    report["peak_mib"] = None if memory is None else {str(memory[0]): memory[1]}
    report["before"] = BEFORE
    if args.goals:
        run, search = _run_and_search(args.latency)
        goals = measure_goals(rows_figures, memory, run, search)
        console.print(_goals_table(goals, _load()))
        report["goals"] = [dataclasses.asdict(g) for g in goals]
    if args.only_rows or args.goals:
        _write_json(args.json, report)
        return 0
    report |= _part_a(console, variants, sizes, profile_rows)

    if args.no_throughput:
        report["throughput"] = {"skipped": "--no-throughput"}
    else:
        with throughput.serve(args.latency, args.server) as base_url:
            sweep = measure_throughput(base_url, args.concurrency, args.latency, waves)
        title = f"b. OpenAIRunner vs loopback server ({args.latency:g} s latency, {waves} waves)"
        console.print(throughput.measurement_table(title, sweep))
        report["throughput"] = [_measurement_dict(m) for m in sweep]

    missing = "--no-prefix" if args.no_prefix else llama_cpp_missing()
    if missing is not None:
        console.print(f"[yellow]c. prefix reuse skipped: {missing}")
        report["prefix_reuse"] = {"skipped": missing}
    else:
        figure = measure_prefix_reuse(prefix_rows, args.threads)
        console.print(_prefix_table(figure))
        report["prefix_reuse"] = figure.to_dict()

    if _write_json(args.json, report):
        console.print(f"figures written to {args.json}")
    return 0


def _write_json(path: Path | None, report: dict[str, Any]) -> bool:
    """Write ``report`` to ``path`` (if given); whether it was written."""
    if path is None:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return True


if __name__ == "__main__":
    sys.exit(main())
