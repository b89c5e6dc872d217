"""The speed goals of issue 12, each figure measured now beside the one before the issue
(:data:`BEFORE_GOALS`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Sequence

from rich.table import Table

from benchmarks.harness import search_speed, throughput
from benchmarks.harness.perf.rows import BEFORE, RowsFigure
from benchmarks.harness.synthetic_server import SyntheticServer
from benchmarks.harness.tables import figures_table

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


def goals_table(goals: Sequence[Goal], load: str) -> Table:
    table = figures_table(
        f"issue 12: speed goals, now beside before (load average {load})",
        ("figure", "now", "before issue 12", "goal", "met"),
    )
    for g in goals:
        table.add_row(g.figure, g.now, g.before, g.target, "yes" if g.met else "no")
    return table


def load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    except OSError:  # pragma: no cover - not on this platform
        return "unknown"


def run_and_search(latency: float) -> tuple[throughput.Measurement, search_speed.SearchSpeed]:
    """The 2,000-request run and the 48-candidate search at ``latency``, concurrency 32."""
    with throughput.serve(latency, "process") as base_url:
        run = asyncio.run(throughput.measure(base_url, 2000, 32, latency))
    args = search_speed.parser().parse_args(["--latency", str(latency)])
    with SyntheticServer(latency) as server:
        search = search_speed.measure(server, args)
    return run, search
