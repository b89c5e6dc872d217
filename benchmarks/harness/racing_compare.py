"""Racing against scoring every candidate in full, on a task whose true accuracies are known.

Runs the same search (beam or evolution, the same operators, the same budget in calls) with
``--racing off``, ``paired`` and ``halving`` over many seeds, on the noisy landscape of
:mod:`sammo_core.testing.landscape`: every prompt's true accuracy is known exactly, so the
winner's worth needs no test split (its held-out test accuracy is shown too). Per mode:

- ``true acc``: the winner's true accuracy, mean over seeds, and its paired difference from
  ``off`` across seeds (95% bootstrap interval over seeds; the seeds are the pairs);
- ``val``: the winner's validation score; ``candidates`` and ``calls`` spent;
- ``pipelined`` (not a racing mode, beam only) is the beam with racing off and each step
  proposed while the one before is scored (``--pipeline``): what the lag costs in quality;
- ``calls to off's val``: for each seed, the calls spent until the search first held a
  candidate scored in full at least as high on validation as ``off``'s winner, divided by
  the calls ``off`` spent to find its winner (lower is better; seeds where it never got there
  count 1 and are shown as ``missed``).

Run it with::

    python -m benchmarks.harness.racing_compare                       # beam, 20 seeds
    python -m benchmarks.harness.racing_compare --strategy evolution --seeds 0-39 --calls 3000

A benchmark reports figures; it asserts nothing. The model is in-process (a scripted runner
answering from the landscape), so a run of many seeds takes seconds of CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mutators.base import Mutator
from mutators.examples import ChangeExampleCount, ReorderExamples, SwapExamples
from mutators.format import ChangePrefixes, ChangeSectionFormat
from mutators.mixture import Mixture
from mutators.structure import DropParagraph, DropSection, ReorderSections, RepeatSection
from sammo_core.components import Examples, GenerateText, InputData, MetaPrompt, Output, Section
from sammo_core.errors import ConfigError
from sammo_core.objectives import paired_difference
from sammo_core.scoring import CONTENT_FREE_INPUTS
from sammo_core.testing.landscape import landscape_model, true_accuracy
from sammo_core.testing.synthetic import items
from search.base import Search
from search.beam import BeamSearch
from search.budget import SearchBudget
from search.evolution import RegularizedEvolution
from search.racing import RACING_MODES, Racing
from search.result import SearchResult

__all__ = ["ModeRun", "compare_traces", "main", "parser", "run_one", "start_program", "trace_curve"]

_NOTES = [
    "Read the question carefully.",
    "Think about what the question really asks.",
    "Answers are single words.",
    "Be concise.",
    "Consider both options before answering.",
    "Most answers are yes.",
]


def start_program() -> Output:
    """Instructions of mixed worth, three examples from a pool of twelve, the input."""
    pool = items(12, start=1000)
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", ["Answer yes or no."], id="task"),
                    Section("Notes", [" ".join(_NOTES[:3])], id="notes"),
                    Section("Hints", [" ".join(_NOTES[3:])], id="hints"),
                    Section("Examples", [Examples(pool, n=3)], id="examples"),
                    Section("Question", [InputData()], id="question"),
                ],
                data_format="plain",
            )
        ),
        parser="first_line",
    )


def operators() -> Mutator:
    return Mixture(
        [
            DropSection(),
            DropParagraph(),
            ReorderSections(),
            RepeatSection(),
            SwapExamples(),
            ChangeExampleCount(),
            ReorderExamples(),
            ChangeSectionFormat(),
            ChangePrefixes(),
        ]
    )


@dataclasses.dataclass(frozen=True)
class ModeRun:
    """One search: its mode and seed, the winner's figures, and its trace's cumulative calls."""

    mode: str
    seed: int
    true_accuracy: float
    val: float
    test: float
    candidates: int
    eliminated: int
    calls: int
    # (calls spent so far, validation score) of each candidate scored in full, in order
    progress: tuple[tuple[int, float], ...]


#: Not a racing mode: the beam with racing off and each step proposed while the one before is
#: scored (``BeamSearch(pipelined=True)``), to compare what the lag costs in quality.
PIPELINED = "pipelined"


def _search(args: argparse.Namespace, mode: str, seed: int) -> Search:
    pipelined = mode == PIPELINED
    common: dict[str, Any] = {
        "objectives": ["accuracy"],
        "budget": SearchBudget(calls=args.calls),
        "seed": seed,
        "racing": Racing("off" if pipelined else mode, keep=args.keep),  # type: ignore[arg-type]
    }
    if args.strategy == "beam":
        return BeamSearch(
            operators(),
            width=4,
            depth=args.depth,
            mutations_per_parent=4,
            **({"pipelined": True} if pipelined else {}),
            **common,
        )
    if pipelined:
        raise ConfigError("--modes pipelined is for --strategy beam")
    return RegularizedEvolution(operators(), population_size=8, **common)


def run_one(args: argparse.Namespace, mode: str, seed: int) -> ModeRun:
    """One search on the landscape; its winner's true accuracy from its rendered prompt."""
    val, test = items(args.val_rows, start=0), items(args.test_rows, start=10_000)
    model = landscape_model()
    result: SearchResult = asyncio.run(
        _search(args, mode, seed).run(start_program(), val=val, test=test, runner=model)
    )
    best = result.best
    prompt = result.test_scores and _prompt_of(best.program)
    spent, progress = 0, []
    for c in result.candidates:
        spent += c.spent_calls
        if not c.eliminated:
            progress.append((spent, c.score("accuracy")))
    return ModeRun(
        mode,
        seed,
        true_accuracy(prompt or ""),
        best.score("accuracy"),
        result.test_scores[best.id]["accuracy"].value,
        len(result.candidates),
        sum(c.eliminated for c in result.candidates),
        result.usage.calls,
        tuple(progress),
    )


def _prompt_of(program: Output) -> str:
    from sammo_core.graph import compile as compile_graph

    results = compile_graph(program).run_sync(items(1, start=0), landscape_model())
    return results.prompts[0]


def trace_curve(trace: Path, objective: str) -> list[tuple[int, float]]:
    """``(rows scored so far, validation score)`` of each candidate scored in full, in trace
    order, from a run's ``trace.jsonl``: the calls the search costs without a cache (one per
    row, plus the content-free calls of each calibrated candidate), whatever a cache answered.
    A candidate that reused an earlier one's requests (``same_as``) costs nothing."""
    curve, cost = [], 0
    for line in trace.read_text().splitlines():
        row = json.loads(line)
        score = row["scores"][objective]
        race = row.get("race") or {"rows": score["n"], "eliminated": False}
        if row.get("same_as") is None:
            cost += race["rows"] + (len(CONTENT_FREE_INPUTS) if row.get("label_prior") else 0)
        if not race["eliminated"]:
            curve.append((cost, score["value"]))
    return curve


def compare_traces(off: Path, raced: Path, objective: str) -> dict[str, float | None]:
    """Racing against off from two runs' traces: off's best validation score and what it cost;
    the cost at which the raced run first held a candidate at least that good (``None``:
    never); and the raced run's best score within off's cost."""
    a, b = (
        trace_curve(off / "trace.jsonl", objective),
        trace_curve(raced / "trace.jsonl", objective),
    )
    best = max(v for _, v in a)
    cost_off = next(c for c, v in a if v >= best)
    reached = next((c for c, v in b if v >= best), None)
    within = max((v for c, v in b if c <= a[-1][0]), default=None)
    return {
        "off_best": best,
        "off_cost_to_best": cost_off,
        "off_cost": a[-1][0],
        "raced_cost_to_off_best": reached,
        "raced_best_within_off_cost": within,
        "raced_best": max(v for _, v in b),
        "raced_cost": b[-1][0],
    }


def _calls_to(run: ModeRun, target: float) -> int | None:
    return next((calls for calls, val in run.progress if val >= target), None)


def summarize(runs: Sequence[ModeRun], modes: Sequence[str]) -> Table:
    """The table of the module docstring."""
    by = {(r.mode, r.seed): r for r in runs}
    seeds = sorted({r.seed for r in runs})
    table = Table(title=f"racing on the noisy landscape: {len(seeds)} seeds")
    for col in (
        "mode",
        "true acc",
        "minus off [95% CI over seeds]",
        "val",
        "test",
        "candidates (stopped)",
        "calls",
        "calls to off's val",
    ):
        table.add_column(col, justify="left" if col == "mode" else "right")
    off = [by[("off", s)] for s in seeds] if "off" in modes else None
    for mode in modes:
        mine = [by[(mode, s)] for s in seeds]
        truth = [r.true_accuracy for r in mine]
        diff = "-"
        if off is not None and mode != "off":
            d, low, high = paired_difference(truth, [r.true_accuracy for r in off], seed=0)
            diff = f"{d:+.3f} [{low:+.3f}, {high:+.3f}]"
        reach = "-"
        if off is not None:
            ratios, missed = [], 0
            for r, o in zip(mine, off, strict=True):
                got, needed = _calls_to(r, o.val), _calls_to(o, o.val)
                if got is None or not needed:
                    missed += 1
                    ratios.append(1.0)
                else:
                    ratios.append(got / needed)
            reach = f"{_mean(ratios):.2f}" + (f" ({missed} missed)" if missed else "")
        table.add_row(
            mode,
            f"{_mean(truth):.3f}",
            diff,
            f"{_mean([r.val for r in mine]):.3f}",
            f"{_mean([r.test for r in mine]):.3f}",
            f"{_mean([r.candidates for r in mine]):.1f} "
            f"({_mean([r.eliminated for r in mine]):.1f})",
            f"{_mean([r.calls for r in mine]):,.0f}",
            reach,
        )
    return table


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _seeds(text: str) -> list[int]:
    try:
        if "-" in text:
            low, high = (int(x) for x in text.split("-"))
            return list(range(low, high + 1))
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--seeds takes a range or a list, e.g. 0-19 or 0,1,2; got {text!r}"
        ) from None


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="python -m benchmarks.harness.racing_compare", description=__doc__.split("\n\n")[0]
    )
    cli.add_argument("--strategy", choices=("beam", "evolution"), default="beam")
    cli.add_argument("--modes", default="off,paired,halving", help="racing modes to compare")
    cli.add_argument("--seeds", type=_seeds, default=list(range(20)), help="e.g. 0-19")
    cli.add_argument("--calls", type=int, default=2000, help="budget in calls per search")
    cli.add_argument("--depth", type=int, default=30, help="beam depth (steps at most)")
    cli.add_argument("--keep", type=float, default=1 / 3, help="halving: share kept per rung")
    cli.add_argument("--val-rows", type=int, default=48)
    cli.add_argument("--test-rows", type=int, default=400)
    cli.add_argument(
        "--traces",
        nargs=2,
        action="append",
        metavar=("OFF_DIR", "RACED_DIR"),
        help="instead of searching: compare two finished runs' traces (say, on a real model), "
        "the rows each scored as the cost; repeat for several pairs",
    )
    cli.add_argument("--objective", default="accuracy", help="with --traces: the score read")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.traces:
        for off, raced in args.traces:
            found = compare_traces(Path(off), Path(raced), args.objective)
            print(f"{off} vs {raced}: " + ", ".join(f"{k} {v}" for k, v in found.items()))
        return 0
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    known = (*RACING_MODES, PIPELINED)
    bad = [m for m in modes if m not in known]
    if bad:
        raise ConfigError(f"--modes: unknown {bad}; use some of {', '.join(known)}")
    console = Console(stderr=True)
    runs = []
    for seed in args.seeds:
        for mode in modes:
            runs.append(run_one(args, mode, seed))
            console.print(
                f"seed {seed} {mode}: true {runs[-1].true_accuracy:.3f}, "
                f"val {runs[-1].val:.3f}, {runs[-1].candidates} candidates, "
                f"{runs[-1].calls} calls",
                highlight=False,
            )
    Console(width=150).print(summarize(runs, modes))
    print(
        f"strategy {args.strategy}, budget {args.calls} calls, {args.val_rows} validation rows, "
        f"test {args.test_rows} rows; true acc = the winner prompt's exact accuracy"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
