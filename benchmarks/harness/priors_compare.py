"""Search priors, leave-one-task-out: calls to a target and test score at a fixed budget, with
and without the priors the other tasks taught.

The instruction-tuning suite's tasks (SAMMO's BIG-bench splits) run through ``sammo-core bench
run`` against a loopback server whose model knows every gold answer and gives it with a
probability that depends on the prompt, the same way on every task: the *true accuracy* of a
prompt is ``BASE`` plus ``XML_BONUS`` when its sections are in the xml format, plus
``FEW_BONUS`` when it shows at most two examples, plus a task-specific share of each of its
lines (from -``SPREAD`` to +``SPREAD``, drawn from the task and the line's hash). A row is
answered right iff its uniform draw falls below the true accuracy; half of the draws are the
row's own (hard rows are hard for every prompt), half the prompt's and the row's.

This is the setting where priors should pay (what wins is shared across tasks, as the section
format and example count often are for one model); the landscape's task-specific part is what
they cannot know. Three runs of the suite:

1. *learn*: every task, ``--learn-seeds``, ``--learn-budget`` candidates: ``OUT/learn/priors.json``;
2. *afresh*: every task, ``--seeds``, ``--budget`` candidates, no priors;
3. *priors*: the same, with ``--priors OUT/learn/priors.json``: bench leaves each task's own
   entry out, so a task is steered only by the other tasks (leave-one-task-out).

Per (task, seed) pair of 2 and 3: the calls spent until a candidate first scored at least the
start's validation score + ``--target-gain`` (a pair that never gets there counts the calls it
spent, and is shown as missed), and the winner's test score and true accuracy. The table shows
means per condition and the paired difference (priors - afresh) with a 95% bootstrap interval
over the pairs.

With ``--model`` (say ``local:gemma3``) the same three runs go to that model instead of the
loopback one, on ``--suite`` (say ``base-model``, answers by label likelihood): no true
accuracy then, only the test split.

Run it with::

    python -m benchmarks.harness.priors_compare                         # 7 tasks x 10 seeds
    python -m benchmarks.harness.priors_compare --seeds 10-29 --budget 8
    python -m benchmarks.harness.priors_compare --model local:gemma3 --suite base-model \
        --tasks implicatures,navigate,metaphor_boolean --learn-seeds 0 --seeds 1-2 \
        --learn-budget 12 --budget 8 --val-rows 30 --test-rows 60

A benchmark reports figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.datasets import load_sammo_instruction_tuning, resolve_data_dir
from benchmarks.registry import SUITES
from sammo_core.stats import paired_difference
from sammo_core.testing.chat_server import ChatServer

__all__ = ["FeatureOracle", "main", "pair_metrics", "parser", "true_accuracy"]

BASE = 0.45
XML_BONUS = 0.25
FEW_BONUS = 0.10
SPREAD = 0.04
SHARED = 0.5
OPERATORS = "format,structure,examples"
_EXAMPLE = re.compile(r"^Example \d+:", re.MULTILINE)


def _uniform(*parts: object) -> float:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def true_accuracy(prompt: str, task: str, last_input: str) -> float:
    """The prompt's true accuracy on ``task`` (see the module docstring); the input's own
    lines (``last_input``) do not count.

    >>> plain = "# Task\\nSay yes.\\n\\nExample 1:\\nInput: a\\nOutput: yes\\n\\nInput: q"
    >>> xml = plain.replace("# Task", '<section title="Task">')
    >>> round(true_accuracy(xml, "t", "q") - true_accuracy(plain, "t", "q"), 6) == round(
    ...     XML_BONUS + SPREAD * (2 * _uniform("t", '<section title="Task">') - 1)
    ...     - SPREAD * (2 * _uniform("t", "# Task") - 1), 6)
    True
    """
    head = prompt[: prompt.rfind(last_input)] if last_input in prompt else prompt
    value = BASE + (XML_BONUS if "<section" in head else 0.0)
    value += FEW_BONUS if len(_EXAMPLE.findall(head)) <= 2 else 0.0
    for line in dict.fromkeys(x.strip() for x in head.splitlines() if x.strip()):
        value += SPREAD * (2 * _uniform(task, line) - 1)
    return min(0.95, max(0.05, value))


class FeatureOracle:
    """The loopback model: the gold answer of the last known input in the prompt, given with
    the prompt's true accuracy; else a wrong answer."""

    def __init__(self, tasks: Mapping[str, Sequence[Any]]) -> None:
        self.gold: dict[str, tuple[str, str]] = {}
        for task, tables in tasks.items():
            for table in tables:
                for row in table:
                    self.gold[str(row.input)] = (task, str(row.output))

    def __call__(self, request: Mapping[str, Any]) -> str:
        prompt = "\n\n".join(str(m.get("content", "")) for m in request["messages"])
        found = [(prompt.rfind(q), q) for q in self.gold if q in prompt]
        if not found:
            return "unknown"
        _, last = max(found)
        task, answer = self.gold[last]
        digest = hashlib.sha256(prompt[: prompt.rfind(last)].encode()).hexdigest()
        own = _uniform("row", last)
        u = own if _uniform("which", digest, last) < SHARED else _uniform(digest, last)
        return answer if u < true_accuracy(prompt, task, last) else "unknown"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.harness.priors_compare")
    p.add_argument("--tasks", help="comma-separated tasks of --suite (default: all)")
    p.add_argument("--suite", default="instruction-tuning", help="the suite (instruction-tuning)")
    p.add_argument(
        "--model", help="a model instead of the loopback one (e.g. local:gemma3; no true accuracy)"
    )
    p.add_argument("--operators", default=OPERATORS, help=f"operator groups ({OPERATORS})")
    p.add_argument("--val-rows", type=int, help="validation rows (over --max-rows)")
    p.add_argument("--test-rows", type=int, help="test rows (over --max-rows)")
    p.add_argument("--learn-seeds", default="0-2", help="seeds of the learning run (0-2)")
    p.add_argument("--seeds", default="10-19", help="seeds compared with and without (10-19)")
    p.add_argument("--learn-budget", type=int, default=24, help="candidates per learning search")
    p.add_argument("--budget", type=int, default=12, help="candidates per compared search")
    p.add_argument("--max-rows", type=int, default=40, help="rows per split")
    p.add_argument("--target-gain", type=float, default=0.05, help="target: start val + this")
    p.add_argument("--out", type=Path, help="folder for the runs (default: a temporary one)")
    p.add_argument("--data-dir", type=Path, help="benchmark data folder")
    return p


def _seeds(text: str) -> str:
    if "-" in text:
        low, high = (int(x) for x in text.split("-"))
        return ",".join(str(s) for s in range(low, high + 1))
    return text


def _bench(server: ChatServer | None, out: Path, args: argparse.Namespace, *extra: str) -> None:
    from sammo_core.cli import main as cli

    argv = ["bench", "run", args.suite]
    if server is None:
        argv += ["--model", args.model]
    else:
        argv += ["--model", "oracle", "--base-url", server.base_url, "--timeout", "30"]
    argv += ["--operators", args.operators, "--max-rows", str(args.max_rows)]
    for flag, value in (("--val-rows", args.val_rows), ("--test-rows", args.test_rows)):
        if value is not None:
            argv += [flag, str(value)]
    argv += ["--out", str(out), *extra]
    if args.tasks:
        argv += ["--tasks", args.tasks]
    if args.data_dir:
        argv += ["--data-dir", str(args.data_dir)]
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        code = cli(argv)
    if code != 0:
        raise SystemExit(f"bench run failed ({code}): {' '.join(argv)}\n{sink.getvalue()[-2000:]}")


def pair_metrics(
    out: Path, record: Mapping[str, Any], target_gain: float, oracle: bool = True
) -> dict[str, float]:
    """Calls to reach the start's val + ``target_gain`` (``reached`` 0/1), the search's calls,
    the winner's test score and (under the loopback ``oracle``) true accuracy, for one (task,
    seed) record."""
    lines = (out / record["run_dir"] / "trace.jsonl").read_text().splitlines()
    trace = [json.loads(x) for x in lines if x.strip()]
    objective = record["objective"]
    start = trace[0]["scores"][objective]["value"]
    spent, reached, calls_to = 0.0, 0.0, math.nan
    for entry in trace:
        spent += entry["spent"]["calls"]
        score = entry["scores"].get(objective, {}).get("value")
        if score is not None and score >= start + target_gain - 1e-12 and not reached:
            reached, calls_to = 1.0, spent
    total = float(record["usage"]["search"]["calls"])
    prompt = (out / record["optimized"]["prompt_file"]).read_text()
    last = prompt.rstrip().rsplit("Input:", 1)[-1].strip().removesuffix("Output:").strip()
    return {
        "reached": reached,
        "calls_to_target": calls_to if reached else total,
        "calls": total,
        "test": float(record["optimized"]["test"]["value"]),
        "true": true_accuracy(prompt, record["task"], last) if last and oracle else math.nan,
    }


def _pairs(out: Path, target_gain: float, oracle: bool) -> dict[tuple[str, int], dict[str, float]]:
    results = json.loads((out / "results.json").read_text())
    runs = results.get("seeds", [{"seed": results["options"]["seed"], **results}])
    return {
        (name, run["seed"]): pair_metrics(out, record, target_gain, oracle)
        for run in runs
        for name, record in run["tasks"].items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    args = parser().parse_args(argv)
    data_dir = resolve_data_dir(args.data_dir)
    suite = SUITES[args.suite]
    names = args.tasks.split(",") if args.tasks else suite.tasks(data_dir)
    console = Console()
    with contextlib.ExitStack() as stack:
        out = args.out or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        server = None
        if args.model is None:
            tables = {}
            for name in names:
                s = load_sammo_instruction_tuning(data_dir, name)
                tables[name] = [s.train, s.val, s.test] + ([s.incontext] if s.incontext else [])
            server = stack.enter_context(ChatServer(reply=FeatureOracle(tables)))
        console.print(f"learning priors: {len(names)} tasks x seeds {args.learn_seeds} ...")
        _bench(server, out / "learn", args, "--seeds", _seeds(args.learn_seeds), "--budget",
               str(args.learn_budget))  # fmt: skip
        runs = {}
        for label, extra in (
            ("afresh", ()),
            ("priors", ("--priors", str(out / "learn" / "priors.json"))),
        ):
            console.print(f"{label}: {len(names)} tasks x seeds {args.seeds} ...")
            _bench(server, out / label, args, "--seeds", _seeds(args.seeds), "--budget",
                   str(args.budget), *extra)  # fmt: skip
            runs[label] = _pairs(out / label, args.target_gain, oracle=server is not None)
    keys = sorted(runs["afresh"])
    model = args.model or "the loopback model"
    table = Table(
        title=f"Search priors, leave-one-task-out, on {model}: {len(names)} {args.suite} tasks "
        f"x {len({s for _, s in keys})} seeds ({len(keys)} pairs), budget {args.budget} "
        f"candidates, operators {args.operators}; target: start val + {args.target_gain}"
    )
    for column in ("", "afresh", "priors", "priors - afresh [95% CI over pairs]"):
        table.add_column(column, justify="right")
    for metric, label in (
        ("calls_to_target", "calls to target"),
        ("reached", "reached target"),
        ("test", "winner test"),
        ("true", "winner true acc"),
        ("calls", "search calls"),
    ):
        a = [runs["afresh"][k][metric] for k in keys]
        b = [runs["priors"][k][metric] for k in keys]
        if any(math.isnan(x) for x in a + b):
            continue  # true accuracy: the loopback model's only
        diff, low, high = paired_difference(b, a, seed=0)
        table.add_row(
            label,
            f"{sum(a) / len(a):.3f}",
            f"{sum(b) / len(b):.3f}",
            f"{diff:+.3f} [{low:+.3f}, {high:+.3f}]",
        )
    console.print(table)
    console.print(
        "calls to target: a pair that never reached it counts the calls it spent. True "
        "accuracy: of the winner's prompt under the loopback model (known exactly)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
