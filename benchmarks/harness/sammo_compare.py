"""sammo-core beside SAMMO 0.3.3: the same data, the same model server, the same budget.

Both sides talk to one loopback :class:`~sammo_core.testing.ChatServer` (in a child process, so
it shares no interpreter lock with either client) whose replies come from the synthetic task of
:mod:`sammo_core.testing.synthetic`, read from the prompt text alone so that both frameworks'
renderings score alike: the model answers ``item N`` correctly with a probability set by
whether the prompt holds the task line, lacks the distractor and shows 3 or more examples.
The server counts the calls; both sides cap calls in flight at ``--concurrency``.

a. **Plain evaluation** of one fixed prompt (task, 3 examples, input) over ``--rows`` rows:
   wall time, calls, calls in flight at most, and overhead per row ``(wall - ideal) / rows``
   with ``ideal = rows * latency / concurrency``.
b. **A small beam search** from the synthetic start prompt (task, distractor, filler, 1 example,
   input) with the same candidate budget, data and mutation kinds: drop a section, change the
   number of examples. What differs between the two searches is printed with the figures.

SAMMO is optional and lives in its own virtualenv, so its pins (pyglove, openai) cannot break
this one; this module runs :mod:`benchmarks.peers._sammo_side` with that virtualenv's Python::

    python3 -m venv /tmp/sammo-venv && /tmp/sammo-venv/bin/pip install sammo==0.3.3
    python -m benchmarks.harness.sammo_compare --sammo-python /tmp/sammo-venv/bin/python
    python -m benchmarks.harness.sammo_compare --sammo-python /tmp/sammo-venv/bin/python \\
        --rows 200,400

Without ``--sammo-python`` (or with one that cannot import sammo) it prints why and how to set
it up, and exits 0. No figure is asserted: the machine is noisy.

Reading SAMMO's figures: its ``Throttler`` lets a waiting call re-check for capacity every 10 ms
by ``run_in_executor(None, time.sleep, 0.01)``, and only the head of its wait list may start.
With hundreds of calls waiting, those sleeps queue on the default thread pool
(``min(32, cpus + 4)`` threads), so wall time grows about quadratically with the rows queued
at once; on a 2-core machine, patching that sleep to ``asyncio.sleep`` took 400 rows from 52 s
to 2.5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from benchmarks.harness.side_script import run_side, table_pairs
from benchmarks.harness.synthetic_server import MODEL, SyntheticServer
from benchmarks.harness.tables import figures_table
from benchmarks.harness.throughput import int_list
from mutators.examples import ChangeExampleCount
from mutators.mixture import Mixture
from mutators.structure import DropSection
from sammo_core.data import DataTable
from sammo_core.graph import compile
from sammo_core.objectives import Accuracy, evaluate
from sammo_core.runners.openai_runner import OpenAIRunner
from sammo_core.testing import synthetic
from search.beam import BeamSearch
from search.budget import SearchBudget
from search.result import SearchResult

__all__ = [
    "SAMMO_REQUIREMENT",
    "EvalFigure",
    "SearchFigure",
    "SearchSettings",
    "main",
    "sammo_unavailable",
]

SAMMO_REQUIREMENT = "sammo==0.3.3"
SIDE_SCRIPT = Path(__file__).parents[1] / "peers" / "_sammo_side.py"
RESULT_PREFIX = "SAMMO_RESULT "
SETUP_HINT = (
    "python3 -m venv /tmp/sammo-venv && /tmp/sammo-venv/bin/pip install "
    f"{SAMMO_REQUIREMENT}, then pass --sammo-python /tmp/sammo-venv/bin/python"
)
#: The untimed row each side runs first; its item number is outside every timed table.
WARMUP = synthetic.items(1, start=999)

# What differs between the two searches, however the settings are chosen.
SEARCH_DIFFERENCES = (
    "SAMMO's mutators are one DropParameter per droppable section (#task, #distractor, #filler, "
    "#examples) plus one ReplaceParameter swapping the examples section for one showing 1, 3 "
    "or 5 rows; sammo-core's are DropSection (every section not holding the input) with "
    "weight 4 and ChangeExampleCount(1, 3, 5) with weight 1 in a Mixture that does not learn: "
    "the same edits, drawn 4:1 on both sides.",
    "SAMMO's search prompt shows its examples as static text rendered ahead by its "
    "PlainFormatter, not as FewshotExamples: SAMMO 0.3.3's CSS matching, which every mutator "
    "runs, raises 'ValueError: Unsupported type: <class 'sammo.data.DataTable'>' on a program "
    "holding FewshotExamples. (Part a uses FewshotExamples, which runs fine without mutators.)",
    "SAMMO's BagOfMutators draws mutations_per_parent operators with replacement and merges "
    "repeats, and DropParameter gives one child however often it is drawn, so a parent can "
    "get fewer children; sammo-core asks for that many new children.",
    "SAMMO evaluates every child of a depth at once (all rows of all children queue on one "
    "throttler); sammo-core evaluates a parent's children as soon as they are proposed, all "
    "candidates' rows sharing the --concurrency slots, while the next parents propose.",
    "SAMMO may evaluate a program it has seen (answered from its in-memory cache, no call); "
    "sammo-core skips it by graph hash, so its budget buys distinct programs only.",
    "SAMMO's seeds are fixed inside its search (random.Random(42), random_state by position); "
    "sammo-core's come from --seed. Both prompts use markdown sections and plain data, but "
    "the texts differ in detail (SAMMO writes no 'Example N:' headers).",
)


# -- figures -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EvalFigure:
    """One side's plain evaluation of the fixed prompt."""

    side: str
    rows: int
    concurrency: int
    latency: float
    wall_s: float
    calls: int
    max_in_flight: int
    accuracy: float

    @property
    def ideal_s(self) -> float:
        return self.rows * self.latency / self.concurrency

    @property
    def efficiency(self) -> float:
        return self.ideal_s / self.wall_s if self.wall_s > 0 else float("inf")

    @property
    def overhead_ms_per_row(self) -> float:
        return 1000.0 * (self.wall_s - self.ideal_s) / self.rows

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "ideal_s": self.ideal_s,
            "efficiency": self.efficiency,
            "overhead_ms_per_row": self.overhead_ms_per_row,
        }


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """The search both sides run."""

    rows: int = 50
    candidates: int = 12
    width: int = 2
    depth: int = 6
    mutations_per_parent: int = 4
    example_counts: tuple[int, ...] = (1, 3, 5)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("rows", "candidates", "width", "depth", "mutations_per_parent"):
            if getattr(self, name) < 1:
                raise ValueError(f"search {name} must be >= 1; got {getattr(self, name)}")


@dataclasses.dataclass(frozen=True)
class SearchFigure:
    """One side's search: what it spent and what it found."""

    side: str
    wall_s: float
    calls: int
    ideal_s: float  # calls * latency / concurrency: every call overlapped
    max_in_flight: int
    candidates: int
    distinct_candidates: int
    start_score: float
    best_score: float
    best: str

    @property
    def efficiency(self) -> float:
        return self.ideal_s / self.wall_s if self.wall_s > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "efficiency": self.efficiency}


# -- sammo-core's side ---------------------------------------------------------------------------


async def _ours_eval(
    server: SyntheticServer, data: DataTable, concurrency: int
) -> tuple[float, float]:
    graph = compile(synthetic.optimal_program())
    async with OpenAIRunner(MODEL, base_url=server.base_url, max_concurrency=concurrency) as runner:
        # One untimed row first (imports, first connection), as on SAMMO's side.
        await graph.run(WARMUP, runner)
        server.reset()
        loop = asyncio.get_running_loop()
        start = loop.time()
        results = await graph.run(data, runner, max_concurrency=concurrency)
        wall = loop.time() - start
    return wall, evaluate(results, [Accuracy()])["accuracy"].value


async def _ours_search(
    base_url: str, data: DataTable, settings: SearchSettings, concurrency: int
) -> tuple[float, SearchResult]:
    mutator = Mixture(
        [
            (DropSection(), 4.0),
            (ChangeExampleCount(choices=settings.example_counts), 1.0),
        ],
        learn=False,
    )
    search = BeamSearch(
        mutator,
        width=settings.width,
        depth=settings.depth,
        mutations_per_parent=settings.mutations_per_parent,
        budget=SearchBudget(candidates=settings.candidates),
        seed=settings.seed,
        max_concurrency=concurrency,
    )
    async with OpenAIRunner(MODEL, base_url=base_url, max_concurrency=concurrency) as runner:
        loop = asyncio.get_running_loop()
        start = loop.time()
        result = await search.run(synthetic.start_program(n_examples=1), val=data, runner=runner)
        wall = loop.time() - start
    return wall, result


# -- SAMMO's side --------------------------------------------------------------------------------


def sammo_unavailable(python: str | None, timeout: float = 120.0) -> str | None:
    """Why the SAMMO side cannot run with ``python``, or ``None`` when it can."""
    if not python:
        return f"--sammo-python was not given; to compare with SAMMO: {SETUP_HINT}"
    if not Path(python).is_file():
        return f"--sammo-python {python!r} does not exist; {SETUP_HINT}"
    probe = "import sammo.search, sammo.runners; print(getattr(sammo, '__version__', '?'))"
    try:
        done = subprocess.run(
            [python, "-c", probe], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"--sammo-python {python!r} could not run: {exc}; {SETUP_HINT}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        return f"{python} cannot import sammo ({last}); {SETUP_HINT}"
    return None


def run_sammo_side(python: str, job: Mapping[str, Any], timeout: float) -> dict[str, Any]:
    """Run one job of :mod:`benchmarks.peers._sammo_side` and return its result."""
    done = run_side(python, SIDE_SCRIPT, job, prefix=RESULT_PREFIX, timeout=timeout)
    if done.result is not None:
        result: dict[str, Any] = done.result
        return result
    tail = "\n".join(done.stderr.strip().splitlines()[-15:])
    raise RuntimeError(f"the SAMMO side failed (exit {done.returncode}):\n{tail}")


def _job(task: str, base_url: str, concurrency: int, data: DataTable) -> dict[str, Any]:
    return {
        "task": task,
        "base_url": base_url,
        "model": MODEL,
        "concurrency": concurrency,
        "rows": table_pairs(data),
        "pool": table_pairs(synthetic.items(12, start=1000)),
        "texts": {
            "task": synthetic.TASK,
            "distractor": synthetic.DISTRACTOR,
            "filler": synthetic.FILLER,
        },
    }


# -- the comparison ------------------------------------------------------------------------------


def compare_eval(
    server: SyntheticServer,
    sammo_python: str | None,
    rows: int,
    concurrency: int,
    timeout: float,
) -> list[EvalFigure]:
    """Part a at one size: sammo-core, then SAMMO when ``sammo_python`` is given."""
    data = synthetic.items(rows)
    figures = []
    wall, accuracy = asyncio.run(_ours_eval(server, data, concurrency))
    stats = server.stats()
    figures.append(
        EvalFigure(
            "sammo-core",
            rows,
            concurrency,
            server.latency,
            wall,
            stats["completions"],
            stats["max_in_flight"],
            accuracy,
        )
    )
    if sammo_python is not None:
        server.reset()
        job = _job("eval", server.base_url, concurrency, data)
        job |= {"timeout": timeout, "warmup": table_pairs(WARMUP)}
        out = run_sammo_side(sammo_python, job, timeout)
        stats = server.stats()
        stats["completions"] -= out["warmup_calls"]
        figures.append(
            EvalFigure(
                f"sammo {out['sammo_version']}",
                rows,
                concurrency,
                server.latency,
                out["wall_s"],
                stats["completions"],
                stats["max_in_flight"],
                out["accuracy"],
            )
        )
    return figures


def compare_search(
    server: SyntheticServer,
    sammo_python: str | None,
    settings: SearchSettings,
    concurrency: int,
    timeout: float,
) -> list[SearchFigure]:
    """Part b: the beam search on both sides, with the same budget and data."""
    data = synthetic.items(settings.rows)
    server.reset()
    wall, result = asyncio.run(_ours_search(server.base_url, data, settings, concurrency))
    stats = server.stats()
    figures = [
        SearchFigure(
            "sammo-core",
            wall,
            stats["completions"],
            stats["completions"] * server.latency / concurrency,
            stats["max_in_flight"],
            len(result.candidates),
            len({c.hash for c in result.candidates}),
            result.start.score("accuracy"),
            result.best.score("accuracy"),
            " <- ".join(_lineage(result)),
        )
    ]
    if sammo_python is not None:
        server.reset()
        job = _job("search", server.base_url, concurrency, data) | {
            "timeout": timeout,
            "candidates": settings.candidates,
            "width": settings.width,
            "depth": settings.depth,
            "mutations_per_parent": settings.mutations_per_parent,
            "example_counts": list(settings.example_counts),
            "seed": settings.seed,
        }
        out = run_sammo_side(sammo_python, job, timeout)
        stats = server.stats()
        figures.append(
            SearchFigure(
                f"sammo {out['sammo_version']}",
                out["wall_s"],
                stats["completions"],
                stats["completions"] * server.latency / concurrency,
                stats["max_in_flight"],
                out["candidates"],
                out["distinct_candidates"],
                out["start_score"],
                out["best_score"],
                " <- ".join(out["best_actions"]),
            )
        )
    return figures


def _lineage(result: SearchResult) -> list[str]:
    """The operators from the best candidate back to the start, as SAMMO lists its actions."""
    actions, node = [], result.best
    while node.parent is not None:
        actions.append(node.description)
        node = result.candidates[node.parent]
    return actions or ["start"]


def _eval_table(figures: Sequence[EvalFigure]) -> Table:
    columns = [
        *("side", "rows", "conc.", "wall s", "vs ours", "ideal s", "eff."),
        *("overhead ms/row", "calls", "max in flight", "accuracy"),
    ]
    table = figures_table("a. plain evaluation of one fixed prompt", columns)
    ours = {f.rows: f.wall_s for f in figures if f.side == "sammo-core"}
    for f in figures:
        table.add_row(
            f.side,
            str(f.rows),
            str(f.concurrency),
            f"{f.wall_s:.2f}",
            f"{f.wall_s / ours[f.rows]:.1f}x" if ours.get(f.rows) else "-",
            f"{f.ideal_s:.2f}",
            f"{f.efficiency:.1%}",
            f"{f.overhead_ms_per_row:.2f}",
            str(f.calls),
            str(f.max_in_flight),
            f"{f.accuracy:.3f}",
        )
    return table


def _search_table(figures: Sequence[SearchFigure], settings: SearchSettings) -> Table:
    title = (
        f"b. beam search: width {settings.width}, depth <= {settings.depth}, "
        f"{settings.mutations_per_parent} mutations per parent, {settings.candidates} candidates, "
        f"{settings.rows} rows"
    )
    columns = [
        *("side", "wall s", "vs ours", "calls", "ideal s", "eff.", "max in flight"),
        *("candidates", "distinct", "start acc.", "best acc."),
    ]
    table = figures_table(title, columns)
    ours = figures[0].wall_s if figures else 0.0
    for f in figures:
        table.add_row(
            f.side,
            f"{f.wall_s:.2f}",
            f"{f.wall_s / ours:.1f}x" if ours > 0 else "-",
            str(f.calls),
            f"{f.ideal_s:.2f}",
            f"{f.efficiency:.1%}",
            str(f.max_in_flight),
            str(f.candidates),
            str(f.distinct_candidates),
            f"{f.start_score:.3f}",
            f"{f.best_score:.3f}",
        )
    return table


def main(argv: Sequence[str] | None = None) -> int:
    """Compare both sides; print tables (and write JSON with ``--json``). Exit 0 on a skip."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.harness.sammo_compare", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--sammo-python", default=None, help="the Python of a SAMMO virtualenv")
    parser.add_argument("--rows", type=int_list, default=[200], help="plain-evaluation sizes")
    parser.add_argument("--latency", type=float, default=0.05, help="server seconds per call")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight, both sides")
    parser.add_argument("--search-rows", type=int, default=SearchSettings.rows)
    parser.add_argument("--candidates", type=int, default=SearchSettings.candidates)
    parser.add_argument("--width", type=int, default=SearchSettings.width)
    parser.add_argument("--depth", type=int, default=SearchSettings.depth)
    parser.add_argument(
        "--mutations-per-parent", type=int, default=SearchSettings.mutations_per_parent
    )
    parser.add_argument("--seed", type=int, default=0, help="sammo-core's search seed")
    parser.add_argument("--no-search", action="store_true", help="skip part b")
    parser.add_argument(
        "--ours-only", action="store_true", help="run sammo-core's side even without SAMMO"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per SAMMO run")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write figures")
    args = parser.parse_args(argv)
    if args.latency < 0 or args.concurrency < 1 or args.timeout <= 0:
        parser.error("--latency must be >= 0, --concurrency >= 1 and --timeout > 0")
    try:
        settings = SearchSettings(
            rows=args.search_rows,
            candidates=args.candidates,
            width=args.width,
            depth=args.depth,
            mutations_per_parent=args.mutations_per_parent,
            seed=args.seed,
        )
    except ValueError as exc:
        parser.error(str(exc))

    console = Console(width=max(Console().width, 140))
    skip = sammo_unavailable(args.sammo_python)
    if skip is not None:
        console.print(f"[yellow]SAMMO comparison skipped: {skip}")
        if not args.ours_only:
            return 0
    sammo_python = None if skip is not None else args.sammo_python
    report: dict[str, Any] = {"sammo": SAMMO_REQUIREMENT, "skipped": skip}
    with SyntheticServer(args.latency) as server:
        evals = [
            f
            for rows in args.rows
            for f in compare_eval(server, sammo_python, rows, args.concurrency, args.timeout)
        ]
        console.print(_eval_table(evals))
        report["eval"] = [f.to_dict() for f in evals]
        if not args.no_search:
            searches = compare_search(
                server, sammo_python, settings, args.concurrency, args.timeout
            )
            console.print(_search_table(searches, settings))
            for f in searches:
                console.print(f"best of {f.side} (edits, last first): {f.best}")
            console.print("What differs between the two searches:")
            for line in SEARCH_DIFFERENCES:
                console.print(f"  - {line}")
            report["search"] = {
                "settings": dataclasses.asdict(settings),
                "figures": [f.to_dict() for f in searches],
                "differences": list(SEARCH_DIFFERENCES),
            }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        console.print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
