"""Rows per second: compile + run + score of a two-section program with a zero-latency runner,
with CPU time per row and peak memory, beside the figures before render plans (:data:`BEFORE`).
"""

from __future__ import annotations

import dataclasses
import time
import tracemalloc
from collections.abc import Sequence
from typing import Any

from rich.table import Table

from benchmarks.harness.perf.workload import TASK, review_table
from sammo_core.components import GenerateText, InputData, MetaPrompt, Output, Section
from sammo_core.data import DataTable
from sammo_core.graph import compile
from sammo_core.objectives import Accuracy, evaluate
from sammo_core.runners.scripted import ScriptedRunner

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


def rows_table(figures: Sequence[RowsFigure], memory: tuple[int, float] | None) -> Table:
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
