"""a. Framework overhead: timed passes of the realistic program (:func:`measure_overhead`) and a
``cProfile`` split of one pass into phases and top functions (:func:`profile_breakdown`).
"""

from __future__ import annotations

import asyncio
import cProfile
import dataclasses
import os
import pstats
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from benchmarks.harness.perf.workload import (
    CONCURRENCY,
    TimedRunner,
    realistic_program,
    review_table,
    scripted_reply,
)
from benchmarks.harness.tables import figures_table
from sammo_core.components import Output
from sammo_core.data import DataTable
from sammo_core.graph import compile
from sammo_core.objectives import Accuracy, evaluate
from sammo_core.runners.base import Runner
from sammo_core.runners.scripted import ScriptedRunner


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
    warm = TimedRunner(ScriptedRunner(default=scripted_reply))
    asyncio.run(_timed_pass(program, data[: min(rows, 16)], warm))
    runner = TimedRunner(ScriptedRunner(default=scripted_reply, model="zero-latency"))
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


def overhead_table(figures: Sequence[OverheadFigure]) -> Table:
    columns = [
        *("variant", "rows", "calls", "compile ms", "run s", "of which runner s"),
        *("objective s", "total s", "rows/s", "µs/row", "vs plain"),
    ]
    table = figures_table(
        f"a. framework overhead (zero-latency runner, concurrency {CONCURRENCY})", columns
    )
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


def phase_table(breakdowns: Sequence[Breakdown]) -> Table:
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


def functions_table(title: str, functions: Sequence[FunctionTime]) -> Table:
    table = figures_table(title, ("function", "calls", "cumulative s", "self s"))
    for f in functions:
        table.add_row(f.name, f"{f.calls:,}", f"{f.cumulative_s:.3f}", f"{f.self_s:.3f}")
    return table
