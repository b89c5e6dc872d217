"""Prompts that hold across models: a search scored on two models against each model's own.

For each task of a suite (default ``base-model``, answers by label likelihood), three searches
from the same start, seed and budget: one scored on both models at once (a
:class:`~search.panel.Panel`, ``--across mean`` or ``min``), and one on each model alone. Then
every winner (and the start) is scored on the whole test split on *each* model, and the table
shows, per task and model, the test score of the start, of the joint winner and of that model's
own winner, with the paired difference joint - own on the same rows (95% bootstrap interval;
McNemar's p for 0/1 scores): what robustness costs on each model, or what it gains.

Run it with::

    python -m benchmarks.harness.panel_compare                           # local + local:gemma3
    python -m benchmarks.harness.panel_compare --tasks implicatures --budget 6 --val-rows 20

With ``--cache`` the own searches reuse the joint search's answers (the same request to the
same model), so their paid calls can be 0: the calls column counts what each search paid.

A benchmark reports figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.datasets import resolve_data_dir
from benchmarks.registry import SUITES
from sammo_core.components import Output
from sammo_core.objectives import Score
from sammo_core.stats import compare_paired
from search.evaluator import Evaluator
from search.panel import Panel

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.harness.panel_compare")
    p.add_argument("--models", default="local,local:gemma3", help="two or more, comma-separated")
    p.add_argument("--suite", default="base-model")
    p.add_argument("--tasks", default="implicatures,navigate", help="comma-separated tasks")
    p.add_argument("--across", choices=("mean", "min"), default="mean")
    p.add_argument("--budget", default="6", help="candidates per search (6)")
    p.add_argument("--val-rows", type=int, default=20)
    p.add_argument("--test-rows", type=int, help="test rows (default: all the split has)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base-url", help="an OpenAI-compatible endpoint for the models")
    p.add_argument("--cache", type=Path, help="a SQLite completion cache shared by the runs")
    p.add_argument("--data-dir", type=Path, help="benchmark data folder")
    return p


async def _test_scores(
    programs: Mapping[str, Output], test: Any, runner: Any, objectives: Sequence[Any]
) -> dict[str, Score]:
    evaluator = Evaluator(test, runner, list(objectives))
    done = await asyncio.gather(*(evaluator.evaluate(p) for p in programs.values()))
    return {name: e.scores[objectives[0].name] for name, e in zip(programs, done, strict=True)}


async def _task(args: argparse.Namespace, name: str, stacks: Mapping[str, Any]) -> list[list[str]]:
    from benchmarks.cli_bench import _for_model
    from benchmarks.suites import SuiteOptions

    data_dir = resolve_data_dir(args.data_dir)
    options = SuiteOptions(
        budget=args.budget, seed=args.seed, val_rows=args.val_rows, test_rows=args.test_rows
    )
    quiet = io.StringIO()
    models = list(stacks)
    with contextlib.redirect_stderr(quiet):
        from rich.console import Console

        console = Console(file=quiet)
        bench = SUITES[args.suite].build(name, data_dir, options)
        # A base model among them sets completion mode for all: one program, one call setting.
        for model in models:
            bench = _for_model(bench, model, console)
    winners: dict[str, Output] = {"start": bench.program}
    searches: dict[str, Any] = {"joint": Panel({m: stacks[m].runner for m in models}, args.across)}
    searches.update({m: stacks[m].runner for m in models})
    calls: dict[str, int] = {}
    for label, runner in searches.items():
        search = bench.make_search()
        result = await search.run(bench.program, train=bench.train, val=bench.val, runner=runner)
        winners[label] = bench.winner(result).program
        calls[label] = result.usage.calls
    objective = bench.objectives[0]
    rows = []
    for model in models:
        scores = await _test_scores(winners, bench.test, stacks[model].runner, bench.objectives)
        start, joint, own = scores["start"], scores["joint"], scores[model]
        assert joint.per_item is not None and own.per_item is not None
        paired = compare_paired(joint.per_item, own.per_item, direction=objective.direction)
        rows.append(
            [
                name,
                model,
                f"{start.value:.3f}",
                f"{joint.value:.3f} [{joint.ci_low:.3f}, {joint.ci_high:.3f}]",
                f"{own.value:.3f} [{own.ci_low:.3f}, {own.ci_high:.3f}]",
                str(paired),
                f"{calls['joint']:,} / {calls[model]:,}",
            ]
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    from sammo_core.runners.factory import build_runner

    args = parser().parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]

    async def go() -> list[list[str]]:
        stacks = {m: build_runner(m, base_url=args.base_url, cache=args.cache) for m in models}
        try:
            rows = []
            for name in args.tasks.split(","):
                rows += await _task(args, name, stacks)
            return rows
        finally:
            for stack in stacks.values():
                await stack.aclose()

    rows = asyncio.run(go())
    table = Table(
        title=f"One program for {len(models)} models ({', '.join(models)}): {args.suite}, "
        f"budget {args.budget} candidates, {args.val_rows} validation rows, seed {args.seed}, "
        f"joint search on the {args.across}"
    )
    for column in ("task", "test on", "start", "joint winner", "own winner",
                   "joint - own (paired)", "calls paid: joint / own"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("task", "test on") else "right")
    for row in rows:
        table.add_row(*row)
    Console(width=200).print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
