"""Hard prompts, soft prompts and both, side by side on the same test rows.

``python -m benchmarks.harness.soft_compare --tasks implicatures,metaphor_boolean`` measures,
for each instruction-tuning task (SAMMO's BIG-bench splits) on an in-process model (default Gemma 3
270M base, ``gemma3``), four programs scored by rank classification on the same test rows:

* **zero-shot**: the task's instruction and the input, in completion mode (the ``base-model``
  suite's start program);
* **hard**: the best program of a beam search over structure and examples operators
  (``--candidates``, default 8), each candidate scored on validation by rank classification
  (:class:`~sammo_core.runners.hf.TransformersRunner` with the labels on the call);
* **soft**: a soft prompt in place of the instruction (``--soft-tokens`` virtual tokens
  initialized from the instruction's token embeddings, then the input), trained by
  :class:`~search.prompt_tuning.PromptTuner` on the training split;
* **hybrid**: the same soft prompt training on top of the hard winner.

It prints and writes (``--out``, default ``runs/soft_compare``) a table of test accuracy with
95% (Wilson) intervals, validation accuracy, steps (candidates for the search) and seconds;
each search and training run keeps its own folder beside it (trace, checkpoint, report). A
measuring instrument, not part of the library: the lead runs it in full, tests run its pieces.

>>> print(format_table([CompareRow("toy", "zero-shot", Score("accuracy", 0.5, 0.3, 0.7, n=10),
...     Score("accuracy", 0.4, n=5), 0, 1.25)]))
| task | program | test accuracy [95% CI] | val accuracy | steps | seconds |
|---|---|---|---|---|---|
| toy | zero-shot | 0.500 [0.300, 0.700] (n=10) | 0.400 | 0 | 1.2 |
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyglove as pg

from sammo_core.components import InputData, Output
from sammo_core.errors import SammoError
from sammo_core.objectives import Score

if TYPE_CHECKING:
    from sammo_core.runners.hf import HFModel

__all__ = ["CompareRow", "compare_task", "format_table", "main", "soft_only"]

DEFAULT_TASKS = ("implicatures", "metaphor_boolean")
#: The operator groups of the hard-prompt search.
HARD_OPERATORS = "structure,examples"


@dataclasses.dataclass(frozen=True)
class CompareRow:
    """One program's line of the table."""

    task: str
    program: str
    test: Score
    val: Score | None
    steps: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "program": self.program,
            "test": self.test.to_dict() | {"per_item": None},
            "val": None if self.val is None else self.val.to_dict() | {"per_item": None},
            "steps": self.steps,
            "seconds": round(self.seconds, 2),
        }


def format_table(rows: Sequence[CompareRow]) -> str:
    """The markdown table of :func:`main`."""
    lines = [
        "| task | program | test accuracy [95% CI] | val accuracy | steps | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r.test
        test = f"{t.value:.3f} [{t.ci_low or t.value:.3f}, {t.ci_high or t.value:.3f}] (n={t.n})"
        val = "-" if r.val is None else f"{r.val.value:.3f}"
        lines.append(f"| {r.task} | {r.program} | {test} | {val} | {r.steps} | {r.seconds:.1f} |")
    return "\n".join(lines)


def soft_only(program: Output) -> Output:
    """``program`` with its instruction text dropped: the input alone (a soft prompt is put
    before it by prompt tuning)."""
    return pg.clone(program, deep=True, override={"child.prompt.children": [InputData()]})  # type: ignore[no-any-return]


def compare_task(task: str, hf: HFModel, args: argparse.Namespace) -> list[CompareRow]:
    """Zero-shot, hard, soft and hybrid on one task (see the module docstring)."""
    from benchmarks.datasets import load_sammo_instruction_tuning
    from benchmarks.suites import SuiteOptions, get_suite
    from sammo_core.runners.hf import TransformersRunner
    from search.prompt_tuning import PromptTuner, rank_accuracy, with_labels
    from search.soft_training import TrainConfig

    splits = load_sammo_instruction_tuning(args.data_dir, task)
    if not splits.labels:
        raise SammoError(f"task {task!r} has no closed label set; pick a classification task")
    labels = splits.labels
    # Structure and examples operators only: a rank-classifying runner answers with the bare
    # label, which the parsers of the json and xml data formats would not read.
    options = SuiteOptions(budget=str(args.candidates), seed=args.seed, operators=HARD_OPERATORS)
    bench = get_suite("base-model").build(task, args.data_dir, options)
    train = splits.train[: args.train_rows]
    val, test = splits.val[: args.val_rows], splits.test[: args.test_rows]
    out = args.out / task
    rows: list[CompareRow] = []

    def scored(name: str, program: Output, steps: int, started: float, val_score: Any) -> None:
        score = rank_accuracy(hf, program, test, labels, seed=args.seed)
        rows.append(CompareRow(task, name, score, val_score, steps, time.perf_counter() - started))
        print(format_table(rows[-1:]).splitlines()[-1], flush=True)

    started = time.perf_counter()
    # Labelled calls: the search's runner answers by rank classification, as the table scores.
    zero = with_labels(bench.program, labels)
    scored("zero-shot", zero, 0, started, rank_accuracy(hf, zero, val, labels, seed=args.seed))

    started = time.perf_counter()
    search = bench.make_search()
    runner = TransformersRunner(hf)
    try:
        result = asyncio.run(
            search.run(zero, train=train, val=val, runner=runner, out_dir=out / "hard")
        )
    finally:
        asyncio.run(runner.aclose())
    hard = result.best.program
    hard_val = rank_accuracy(hf, hard, val, labels, seed=args.seed)
    scored("hard", hard, len(result.candidates), started, hard_val)

    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        eval_every=args.eval_every,
        seed=args.seed,
    )
    for name, start in (("soft", soft_only(zero)), ("hybrid", hard)):
        started = time.perf_counter()
        tuning = PromptTuner(
            hf, labels, n_tokens=args.soft_tokens, init=splits.instructions, config=config
        )
        tuned = tuning.run(start, train=train, val=val, out_dir=out / name, resume=args.resume)
        scored(name, tuned.program, tuned.steps, started, tuned.val["tuned"])
    return rows


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.harness.soft_compare",
        description="Zero-shot, best hard prompt, soft prompt and hybrid on the same test rows.",
    )
    p.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help="comma-separated tasks")
    p.add_argument("--model", default="gemma3", help="transformers model spec (default gemma3)")
    p.add_argument("--data-dir", type=Path, help="benchmark data folder (default: found)")
    p.add_argument("--train-rows", type=int, default=100, help="training rows (default 100)")
    p.add_argument("--val-rows", type=int, default=30, help="validation rows (default 30)")
    p.add_argument("--test-rows", type=int, default=60, help="test rows (default 60)")
    p.add_argument("--candidates", type=int, default=8, help="hard search budget (default 8)")
    p.add_argument("--steps", type=int, default=40, help="training steps (default 40)")
    p.add_argument("--soft-tokens", type=int, default=20, help="virtual tokens (default 20)")
    p.add_argument("--lr", type=float, default=0.1, help="AdamW learning rate (default 0.1)")
    p.add_argument("--batch-size", type=int, default=8, help="rows per step (default 8)")
    p.add_argument("--eval-every", type=int, default=10, help="steps between validations")
    p.add_argument("--seed", type=int, default=0, help="seed of searches and training")
    p.add_argument("--out", type=Path, default=Path("runs/soft_compare"), help="output folder")
    p.add_argument("--resume", action="store_true", help="continue the training runs in --out")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison; print and write the table."""
    from sammo_core.runners.hf import load_hf_model

    args = _parser().parse_args(argv)
    try:
        hf = load_hf_model(args.model)
        rows: list[CompareRow] = []
        started = time.perf_counter()
        for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
            print(f"## {task}", flush=True)
            rows += compare_task(task, hf, args)
    except SammoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = format_table(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soft_compare.md").write_text(
        f"# Hard vs soft prompts on {args.model}\n\n{table}\n\n"
        f"{args.train_rows} train, {args.val_rows} val, {args.test_rows} test rows; "
        f"{args.candidates} candidates; {args.steps} steps of batch {args.batch_size}, "
        f"{args.soft_tokens} virtual tokens, lr {args.lr:g}; "
        f"{time.perf_counter() - started:.0f} s in all\n"
    )
    (args.out / "soft_compare.json").write_text(
        json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                    "rows": [r.to_dict() for r in rows]}, indent=2)
    )  # fmt: skip
    print(table)
    print(f"written to {args.out / 'soft_compare.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
