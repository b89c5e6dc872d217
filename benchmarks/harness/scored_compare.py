"""Scored answers on a small base model: zero-shot, a hand-written 4-shot start, and the search.

``python -m benchmarks.harness.scored_compare --tasks implicatures,navigate`` measures, for each
instruction-tuning task (SAMMO's BIG-bench splits: 100 train, 50 validation, 100 test rows) on
the embedded Gemma 3 270M base model (``local:gemma3``), answers read by label likelihood
(rank classification, :mod:`sammo_core.scoring`), on every test row:

* **zero-shot**: the task's instruction and the input, in completion mode;
* **start**: what a user would write first: the instruction and 4 label-balanced examples
  drawn from the training rows (``Examples(n=4, selection="balanced")``);
* **winner**: the best of a beam search from the start (``--candidates``, default 24) over
  the operators a small model responds to: example count (k of 0-8), selection (first,
  random, balanced, by similarity), draw and order, input/output prefixes, the verbalizer
  and calibration; it selects on validation with ``--select`` (``label_loglik``, the mean
  log-probability of the gold label, or ``label_accuracy``).

Each with test accuracy and its 95% (Wilson) interval, the majority-label rate of the test
rows beside them, and the winner-minus-start and winner-minus-majority differences compared
row by row on the same rows (:func:`~sammo_core.stats.compare_paired`: a *paired* bootstrap
interval, the rows better and worse, and the exact McNemar p-value). With ``--correlation``
every candidate is also scored on test, and the table gives the rank correlation (Spearman)
between validation and test over the candidates, for accuracy and for the log-likelihood: how
well each validation score predicts test. Calls go through a persistent cache (``--cache``),
so a rerun replays.

A measuring instrument, not part of the library: the lead runs it in full; tests run its
pieces on a scripted model.

>>> spearman([1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 40.0, 30.0])
0.8
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyglove as pg

from benchmarks import datasets
from benchmarks.suites import BASE_MODEL_MAX_TOKENS, BASE_MODEL_STOPS
from mutators.base import Mutator
from sammo_core.components import Examples, GenerateText, InputData, MetaPrompt, Output, Section
from sammo_core.data import DataTable
from sammo_core.errors import SammoError
from sammo_core.graph import compile as compile_program
from sammo_core.objectives import LabelAccuracy, LabelLogLikelihood, Objective
from sammo_core.results import ResultTable
from sammo_core.runners.base import Runner
from sammo_core.stats import PairedComparison, compare_paired, format_p

__all__ = [
    "DEFAULT_TASKS",
    "TaskReport",
    "format_table",
    "main",
    "scored_mutator",
    "spearman",
    "start_program",
]

DEFAULT_TASKS = (
    "implicatures",
    "navigate",
    "metaphor_boolean",
    "sports_understanding",
    "presuppositions_as_nli",
)


def start_program(instructions: str, pool: DataTable, labels: Sequence[str], n: int = 4) -> Output:
    """The instruction, ``n`` label-balanced examples from ``pool`` and the input, in completion
    mode with the call's labels listed, so a scoring runner ranks them.

    >>> program = start_program("Answer yes or no.", DataTable(["a", "b"], ["yes", "no"]), ["no", "yes"])
    >>> program.child.labels, program.child.mode
    (['no', 'yes'], 'completion')
    """  # noqa: E501
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", [instructions], id="task"),
                    Examples(pool, n=n, selection="balanced", id="examples"),
                    InputData(),
                ]
            ),
            max_tokens=BASE_MODEL_MAX_TOKENS,
            mode="completion",
            stop=list(BASE_MODEL_STOPS),
            labels=list(labels),
        )
    )


def scored_mutator() -> Mutator:
    """The operators a small base model responds to, weighted toward the examples."""
    from mutators.examples import (
        ChangeExampleCount,
        ChangeExampleSelection,
        ReorderExamples,
        SwapExamples,
    )
    from mutators.format import ChangePrefixes
    from mutators.mixture import Mixture
    from mutators.scoring import ChangeVerbalizer, ToggleCalibration

    return Mixture(
        [
            (ChangeExampleCount(), 2.0),
            (ChangeExampleSelection(), 2.0),
            (SwapExamples(), 2.0),
            ReorderExamples(),
            ChangePrefixes(),
            ChangeVerbalizer(),
            ToggleCalibration(),
        ]
    )


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation of ``a`` and ``b`` (ties take their mean rank)."""

    def ranks(values: Sequence[float]) -> list[float]:
        order = sorted(range(len(values)), key=lambda i: values[i])
        out = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2
            i = j + 1
        return out

    ra, rb = ranks(a), ranks(b)
    mean_a, mean_b = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - mean_a) * (y - mean_b) for x, y in zip(ra, rb, strict=True))
    var = math.sqrt(sum((x - mean_a) ** 2 for x in ra) * sum((y - mean_b) ** 2 for y in rb))
    return cov / var if var else 0.0


@dataclasses.dataclass
class TaskReport:
    """One task and seed: test scores of the three programs, the differences, the search."""

    task: str
    seed: int
    majority_label: str
    majority_rate: float
    n_test: int
    scores: dict[str, dict[str, Any]]  # program -> accuracy, ci, loglik
    # Paired on the same test rows (McNemar p for the accuracies; none for the log-likelihood).
    winner_minus_start: PairedComparison
    winner_minus_majority: PairedComparison
    loglik_winner_minus_start: PairedComparison
    winner: str  # the winner's lineage, one step per line
    candidates: int
    calls: int
    seconds: float
    correlation: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


async def _score(program: Output, data: DataTable, runner: Runner, labels: Sequence[str]) -> Any:
    table: ResultTable = await compile_program(program).run(data, runner, max_concurrency=8)
    accuracy = LabelAccuracy(tuple(labels)).score(table)
    loglik = LabelLogLikelihood().score(table)
    return accuracy, loglik


async def run_task(
    task: str,
    *,
    data_dir: str | None,
    runner: Runner,
    seed: int,
    candidates: int,
    select: str,
    correlation: bool,
    out: Path,
    rows: tuple[int | None, int | None] = (None, None),
    racing: str = "off",
    calls: int | None = None,
) -> TaskReport:
    """Zero-shot, start and search winner on one task (see the module docstring); ``rows``
    keeps the first validation and test rows (``None``: all). With ``calls``, the search's
    budget is that many calls instead of ``candidates`` candidates; ``racing`` is its racing
    mode (see :mod:`search.racing`)."""
    from search import BeamSearch, SearchBudget
    from search.racing import Racing

    splits = datasets.load_sammo_instruction_tuning(data_dir, task)
    labels = list(splits.labels or ())
    if len(labels) < 2:
        raise SammoError(f"task {task!r} has no closed label set; pick a classification task")
    train, val, test = splits.train, splits.val[: rows[0]], splits.test[: rows[1]]
    started = time.perf_counter()
    start = start_program(splits.instructions, train, labels)
    start = pg.clone(start, override={"child.prompt.children[1].seed": seed})
    zero = pg.clone(start, override={"child.prompt.children[1].n": 0})
    objective: Objective = (
        LabelLogLikelihood() if select == "label_loglik" else LabelAccuracy(tuple(labels))
    )
    search = BeamSearch(
        scored_mutator(),
        width=4,
        depth=max(1, candidates // 4) if calls is None else 1_000,
        budget=SearchBudget(candidates=candidates) if calls is None else SearchBudget(calls=calls),
        seed=seed,
        objectives=[objective],
        max_concurrency=8,
        racing=Racing(racing),  # type: ignore[arg-type]
    )
    name = f"{task}-seed{seed}" + ("" if racing == "off" else f"-{racing}")
    result = await search.run(start, train=train, val=val, runner=runner, out_dir=out / name)
    winner = result.best
    per_program = {"zero-shot": zero, "start": start, "winner": winner.program}
    scores: dict[str, dict[str, Any]] = {}
    per_item: dict[str, tuple[float, ...]] = {}
    per_item_ll: dict[str, tuple[float, ...]] = {}
    for name, program in per_program.items():
        accuracy, loglik = await _score(program, test, runner, labels)
        per_item[name] = accuracy.per_item or ()
        per_item_ll[name] = loglik.per_item or ()
        scores[name] = {
            "accuracy": accuracy.value,
            "ci": [accuracy.ci_low, accuracy.ci_high],
            "label_loglik": loglik.value,
            "val": None,
        }
    scores["start"]["val"] = result.start.scores[objective.name].value
    scores["winner"]["val"] = winner.scores[objective.name].value
    accuracy_of = LabelAccuracy(tuple(labels))
    found = accuracy_of.majority(test.outputs)
    assert found is not None  # the test split has gold labels
    top, rate = found
    # Always answering the majority label, row by row: what the winner is paired against.
    majority = tuple(
        1.0 if accuracy_of.label_key(o) == accuracy_of.label_key(top) else 0.0 for o in test.outputs
    )
    report = TaskReport(
        task=task,
        seed=seed,
        majority_label=top,
        majority_rate=rate,
        n_test=len(test),
        scores=scores,
        winner_minus_start=compare_paired(per_item["winner"], per_item["start"], seed=seed),
        winner_minus_majority=compare_paired(per_item["winner"], majority, seed=seed),
        loglik_winner_minus_start=compare_paired(
            per_item_ll["winner"], per_item_ll["start"], seed=seed
        ),
        winner="\n".join(f"{c.operator}: {c.description}" for c in result.lineage(winner)[1:]),
        candidates=len(result.candidates),
        calls=result.usage.calls,
        seconds=0.0,
    )
    if correlation:
        report.correlation = await _correlation(result.candidates, val, test, runner, labels)
    report.seconds = round(time.perf_counter() - started, 1)
    return report


async def _correlation(
    candidates: Sequence[Any],
    val: DataTable,
    test: DataTable,
    runner: Runner,
    labels: Sequence[str],
) -> dict[str, float]:
    """Spearman between each candidate's validation and test score, for accuracy and for the
    log-likelihood (every candidate is run on test here: a measurement, never part of a search;
    its validation rows come from the cache the search filled)."""
    scores: dict[str, list[float]] = {k: [] for k in ("val_acc", "val_ll", "test_acc", "test_ll")}
    for candidate in candidates:
        for split, data in (("val", val), ("test", test)):
            accuracy, loglik = await _score(candidate.program, data, runner, labels)
            scores[f"{split}_acc"].append(accuracy.value)
            scores[f"{split}_ll"].append(loglik.value)
    return {
        "accuracy": spearman(scores["val_acc"], scores["test_acc"]),
        "label_loglik": spearman(scores["val_ll"], scores["test_ll"]),
    }


def format_table(reports: Sequence[TaskReport]) -> str:
    """The markdown table of :func:`main`."""
    lines = [
        "| task | seed | majority | zero-shot | start (4 balanced) | winner | winner - start "
        "[paired 95% CI] (rows better/worse, McNemar p) | winner - majority [paired 95% CI] "
        "(rows better/worse, McNemar p) | log-lik. winner - start [paired 95% CI] | "
        "candidates | calls | s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(score: dict[str, Any]) -> str:
        low, high = score["ci"]
        return f"{score['accuracy']:.2f} [{low:.2f}, {high:.2f}]"

    def diff(c: PairedComparison) -> str:
        text = f"{c.diff:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}]"
        if c.p_value is None:
            return text
        return f"{text} ({c.wins}/{c.losses}, p={format_p(c.p_value)})"

    for r in reports:
        lines.append(
            f"| {r.task} | {r.seed} | {r.majority_rate:.2f} ({r.majority_label}) | "
            f"{cell(r.scores['zero-shot'])} | {cell(r.scores['start'])} | "
            f"{cell(r.scores['winner'])} | {diff(r.winner_minus_start)} | "
            f"{diff(r.winner_minus_majority)} | {diff(r.loglik_winner_minus_start)} | "
            f"{r.candidates} | {r.calls} | {r.seconds:.0f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: see the module docstring."""
    from sammo_core.runners.factory import build_runner

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.harness.scored_compare", description=__doc__
    )
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS))
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    parser.add_argument("--candidates", type=int, default=24)
    parser.add_argument(
        "--select", choices=("label_loglik", "label_accuracy"), default="label_loglik"
    )
    parser.add_argument("--correlation", action="store_true")
    parser.add_argument(
        "--racing", choices=("off", "halving", "paired"), default="off", help="racing mode"
    )
    parser.add_argument(
        "--calls", type=int, default=None, help="budget the search in calls, not candidates"
    )
    parser.add_argument("--model", default="local:gemma3")
    parser.add_argument(
        "--base-url", default=None, help="an OpenAI-compatible server serving --model instead"
    )
    parser.add_argument(
        "--val-rows", type=int, default=None, help="the first N validation rows (default all 50)"
    )
    parser.add_argument(
        "--test-rows", type=int, default=None, help="the first N test rows (default all 100)"
    )
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--cache", type=Path, default=Path("runs/scored_compare/cache.sqlite"))
    parser.add_argument("--out", type=Path, default=Path("runs/scored_compare"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    reports: list[TaskReport] = []

    async def go() -> None:
        stack = build_runner(args.model, base_url=args.base_url, cache=args.cache)
        try:
            for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
                for seed in [int(s) for s in args.seeds.split(",")]:
                    report = await run_task(
                        task,
                        data_dir=args.data_dir,
                        runner=stack.runner,
                        seed=seed,
                        candidates=args.candidates,
                        select=args.select,
                        correlation=args.correlation,
                        out=args.out,
                        rows=(args.val_rows, args.test_rows),
                        racing=args.racing,
                        calls=args.calls,
                    )
                    reports.append(report)
                    print(format_table([report]).splitlines()[-1], flush=True)
                    (args.out / "scored_compare.json").write_text(
                        json.dumps([r.to_dict() for r in reports], indent=2)
                    )
        finally:
            await stack.aclose()

    try:
        asyncio.run(go())
    except SammoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    table = format_table(reports)
    (args.out / "scored_compare.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
