"""``sammo-core run PROGRAM --compare OTHER``: two programs on the same rows, compared row by row.

Both programs run on the same rows of ``--data`` with the same model, settings and runner
(cache, limits, retries). Each gets the table ``run`` prints; then the paired difference
PROGRAM - OTHER of the objective (PROGRAM's, or ``--objective``; OTHER is scored by the same
one) and, when both runs scored their labels, of the log-likelihood of the gold label:
:func:`~sammo_core.stats.compare_paired`, with the exact McNemar p-value for accuracies. Two
separate intervals overlap on 50-100 rows even when one program wins on nearly every row where
the two differ; the paired comparison says whether it does.

With ``--out OUT`` it writes ``OUT/program/`` and ``OUT/other/`` (each what ``run --out``
writes: ``results.json``, ``predictions.jsonl``, ``program.json``) and ``OUT/comparison.json``.
When a run stops early, the rows done so far are written, marked partial, and no comparison
is made.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from sammo_core.run_files import write_file

if TYPE_CHECKING:
    from sammo_core.objectives import Objective
    from sammo_core.stats import PairedComparison

__all__ = ["COMPARE_HELP", "compare_scores", "run_compare"]

COMPARE_HELP = (
    "a second program (.py, .json or prompt file) to run on the same rows with the same "
    "model and settings: prints each one's score, then PROGRAM - OTHER row by row (paired 95%% "
    "interval, rows better and worse, McNemar p for accuracies); with --out, writes "
    "OUT/program/, OUT/other/ and OUT/comparison.json"
)

#: The two roles, as the command line names them, and their folders under ``--out``.
ROLES = ("program", "other")


def compare_scores(
    scores: dict[str, Any], other: dict[str, Any], objective: Objective
) -> dict[str, PairedComparison]:
    """PROGRAM - OTHER on ``objective`` and, when both have it, ``label_loglik``, row by row;
    an objective without per-row scores (a cost total) is left out.

    >>> from sammo_core.objectives import Accuracy, Score
    >>> a = {"accuracy": Score("accuracy", 0.75, per_item=(1.0, 1.0, 1.0, 0.0), n=4)}
    >>> b = {"accuracy": Score("accuracy", 0.25, per_item=(0.0, 1.0, 0.0, 0.0), n=4)}
    >>> print(compare_scores(a, b, Accuracy())["accuracy"])
    +0.500 [+0.000, +1.000] (n=4; 2 rows better, 0 worse; McNemar p=0.500)
    """
    from sammo_core.stats import compare_paired

    names = {objective.name: objective.direction, "label_loglik": "maximize"}
    found: dict[str, PairedComparison] = {}
    for name, direction in names.items():
        a, b = scores.get(name), other.get(name)
        if a is None or b is None or a.per_item is None or b.per_item is None:
            continue
        found[name] = compare_paired(a.per_item, b.per_item, direction=direction)
    return found


def _role_args(args: argparse.Namespace, role: str) -> argparse.Namespace:
    """``args`` as ``run`` would take them for one of the two programs."""
    fields = dict(vars(args))
    if role == "other":
        fields["program"] = args.compare
    if args.out is not None:
        fields["out"] = args.out / role
    return argparse.Namespace(**fields)


def run_compare(args: argparse.Namespace) -> int:
    """Run PROGRAM and ``--compare`` OTHER on the same rows and compare them (see the module
    docstring)."""
    from sammo_core.processes import lock_folder

    if args.out is None:
        return _compare(args)
    with lock_folder(args.out):  # one process writes an --out folder at a time
        return _compare(args)


def _compare(args: argparse.Namespace) -> int:
    from rich.console import Console

    from sammo_core.processes import interruption

    pair = _Pair(args, Console(stderr=True, soft_wrap=True))
    try:
        asyncio.run(pair.go())
    except KeyboardInterrupt:
        pair.finish(f"interrupted ({interruption()})")
        pair.console.print("interrupted: the rows done so far are reported above", markup=False)
        return 130
    except Exception as exc:
        if args.out is not None:
            pair.finish(f"{type(exc).__name__}: {exc}")
        raise
    pair.finish(None)
    if args.out is not None:
        pair.console.print(
            f"wrote {args.out / 'program'}, {args.out / 'other'} and "
            f"{args.out / 'comparison.json'}",
            markup=False,
        )
    return 0


class _Pair:
    """The two programs, their rows and the one runner stack; what each run has done."""

    def __init__(self, args: argparse.Namespace, console: Any) -> None:
        from sammo_core.errors import ConfigError
        from sammo_core.graph import compile
        from sammo_core.run_inputs import OUT_FILES, check_out_dir, load_inputs
        from sammo_core.runners.accounting import AccountingRunner
        from sammo_core.runners.factory import build_runner_from_args

        self.args, self.console = args, console
        other: Path = args.compare
        if not other.exists():
            raise ConfigError(
                f"--compare {str(other)!r} does not exist; pass the program to compare PROGRAM "
                "with (a .py file, a saved program .json or a prompt file)"
            )
        self.roles = {role: _role_args(args, role) for role in ROLES}
        loaded, data, objective = load_inputs(self.roles["program"])
        other_loaded, other_data, own = load_inputs(self.roles["other"])
        if list(other_data.outputs) != list(data.outputs):
            raise ConfigError(
                f"PROGRAM and OTHER read different gold outputs from {str(args.data)!r} (their "
                "output fields differ); pass --output-field (and --input-field) so both read "
                "the same rows"
            )
        if own.name != objective.name:
            console.print(
                f"note: scoring OTHER by PROGRAM's objective {objective.name} (its own would be "
                f"{own.name}); --objective to choose another",
                markup=False,
            )
        self.objective, self.data = objective, data
        self.programs = {"program": loaded, "other": other_loaded}
        self.tables = {"program": data, "other": other_data}
        self.graphs = {role: compile(p.program) for role, p in self.programs.items()}
        if args.out is not None:
            check_out_dir(args.out, ("comparison.json",))
            for role in ROLES:
                check_out_dir(args.out / role, OUT_FILES)
        self.stack = build_runner_from_args(args)
        # One stack (cache, limits, retries) for both; each program's calls counted apart.
        self.runners = {role: AccountingRunner(self.stack.runner) for role in ROLES}
        self.done: dict[str, list[Any]] = {role: [] for role in ROLES}
        self.priors: dict[str, dict[str, float] | None] = {}
        self.seconds: dict[str, float] = {}

    async def go(self) -> None:
        """Run PROGRAM, then OTHER, on the rows."""
        from sammo_core.run_inputs import progress_bar

        try:
            for role in ROLES:
                started = time.perf_counter()
                with progress_bar(self.console) as progress:
                    task = progress.add_task(
                        f"{role.upper()} on {self.args.model}", total=len(self.data)
                    )

                    def show(n: int, _total: int, task: Any = task) -> None:
                        progress.update(task, completed=n)

                    table = await self.graphs[role].run(
                        self.tables[role],
                        self.runners[role],
                        max_concurrency=self.args.concurrency,
                        on_progress=show,
                        on_rows=self.done[role].extend,
                        on_error=self.args.on_error,
                    )
                    self.priors[role] = table.label_prior
                self.seconds[role] = time.perf_counter() - started
        finally:
            await self.stack.aclose()

    def finish(self, stopped: str | None) -> None:
        """Print (and with ``--out`` write) each program's report, then the comparison when
        both runs are complete."""
        from sammo_core.run_report import RunReport, print_summary

        reports = {}
        for role in ROLES:
            ran = role in self.seconds
            report = RunReport(
                args=self.roles[role],
                program=self.programs[role].program,
                program_hash=self.graphs[role].hash,
                data=self.tables[role],
                objective=self.objective,
                rows=self.done[role],
                stopped=None if ran else (stopped or "not run"),
                label_prior=self.priors.get(role),
            )
            reports[role] = report
            rows = len(report.results)
            counted = f"{rows} rows" if ran else f"{rows} of {len(self.data)} rows"
            partial = "" if ran else f" (partial: {report.stopped})"
            elapsed = self.seconds.get(role, 0.0)
            _print_line(f"{role.upper()}: {self.roles[role].program}")
            print_summary(
                self.console,
                scores=report.scores,
                usage=self.runners[role].usage,
                elapsed=elapsed,
                title=f"{role.upper()}: {counted}{partial}",
                replies=report.replies,
                facts=report.facts(),
            )
            if self.args.out is not None:
                report.write(self.runners[role].usage, elapsed, requests=None)
        comparisons: dict[str, PairedComparison] = {}
        if stopped is None:
            scores = {role: reports[role].scores for role in ROLES}
            comparisons = compare_scores(scores["program"], scores["other"], self.objective)
            _print_comparisons(comparisons, len(self.data))
        requests = self.stack.retry_stats
        if requests.attempts:
            _print_line(f"requests (both programs): {requests.summary()}")
        if self.args.out is not None:
            _write_comparison(self.args, self.objective, self.data, comparisons, stopped)


def _print_line(text: str) -> None:
    from sammo_core.console import table_console

    table_console().print(text, markup=False, highlight=False)


def _print_comparisons(comparisons: dict[str, PairedComparison], rows: int) -> None:
    if not comparisons:
        _print_line("no per-row scores to compare (a cost objective); compare the totals above")
        return
    for name, comparison in comparisons.items():
        _print_line(
            f"{name}, PROGRAM - OTHER on the same {rows} rows (paired 95% CI): {comparison}"
        )


def _write_comparison(
    args: argparse.Namespace,
    objective: Objective,
    data: Any,
    comparisons: dict[str, PairedComparison],
    stopped: str | None,
) -> None:
    from sammo_core import __version__

    out: Path = args.out
    summary = {
        "program": str(args.program),
        "other": str(args.compare),
        "data": str(args.data),
        "data_hash": data.content_hash(),
        "rows": len(data),
        "model": args.model,
        "objective": objective.name,
        "partial": stopped is not None,
        "stopped": stopped,
        # PROGRAM - OTHER, row by row on the same rows.
        "comparisons": {name: c.to_dict() for name, c in comparisons.items()},
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "sammo_core_version": __version__,
    }
    write_file(out, "comparison.json", orjson.dumps(summary, option=orjson.OPT_INDENT_2))
