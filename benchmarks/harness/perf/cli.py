"""``python -m benchmarks.harness.perf``: the options, the run of each part, the tables and the
JSON report.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from benchmarks.harness import throughput
from benchmarks.harness.perf.goals import goals_table, load_average, measure_goals, run_and_search
from benchmarks.harness.perf.overhead import (
    functions_table,
    measure_overhead,
    overhead_table,
    phase_table,
    profile_breakdown,
)
from benchmarks.harness.perf.prefix import llama_cpp_missing, measure_prefix_reuse, prefix_table
from benchmarks.harness.perf.rows import BEFORE, measure_memory, measure_rows, rows_table
from benchmarks.harness.perf.sweep import measure_throughput, measurement_dict
from benchmarks.harness.perf.workload import VARIANTS


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.harness.perf",
        description="Where the time goes: framework overhead, client throughput and "
        "prefix reuse, in one run.",
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
    console.print(overhead_table(overhead))
    breakdowns = [profile_breakdown(v, profile_rows) for v in variants]
    console.print(phase_table(breakdowns))
    first = breakdowns[0]
    title = f"a. {first.variant}: project functions by cumulative time"
    console.print(functions_table(title, first.top_cumulative))
    title = f"a. {first.variant}: all functions by self time"
    console.print(functions_table(title, first.top_self))
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
    console.print(rows_table(rows_figures, memory))
    report["rows"] = [f.to_dict() for f in rows_figures]
    report["peak_mib"] = None if memory is None else {str(memory[0]): memory[1]}
    report["before"] = BEFORE
    if args.goals:
        run, search = run_and_search(args.latency)
        goals = measure_goals(rows_figures, memory, run, search)
        console.print(goals_table(goals, load_average()))
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
        report["throughput"] = [measurement_dict(m) for m in sweep]

    missing = "--no-prefix" if args.no_prefix else llama_cpp_missing()
    if missing is not None:
        console.print(f"[yellow]c. prefix reuse skipped: {missing}")
        report["prefix_reuse"] = {"skipped": missing}
    else:
        figure = measure_prefix_reuse(prefix_rows, args.threads)
        console.print(prefix_table(figure))
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
