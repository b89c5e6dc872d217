"""``sammo-core bench``: run a benchmark suite, compare two runs, list the suites.

::

    sammo-core bench list
    sammo-core bench run quick --model local --out runs/quick
    sammo-core bench run base-model --tasks implicatures --model local:gemma3 --out runs/gemma
    sammo-core bench run instruction-tuning --tasks implicatures,navigate \\
        --model gpt-4o-mini --budget 24 --cache cache.sqlite --out runs/it-4o-mini
    sammo-core bench run quick --model local --seeds 0,1,2 --out runs/quick-seeds
    sammo-core bench compare runs/it-4o-mini runs/it-llama

``run`` searches each task (selecting on validation), reports baseline vs winner on test, and
writes ``OUT/results.json``, ``OUT/<task>/`` (the search's trace, checkpoint and programs,
``prompts/`` with the rendered prompts), ``OUT/report.md``, ``OUT/report.html`` and
``OUT/score_vs_budget.png``. With ``--seeds`` it searches every task once per seed, into
``OUT/<task>/seed-<s>/``, and ``results.json`` holds each seed's records and their aggregate
(:mod:`benchmarks.seeds`). ``results.json`` is rewritten after every (task, seed); with
``--resume`` a rerun keeps the records it holds for the same settings and continues the
checkpointed searches of the rest. Registered through the ``sammo_core.commands`` entry-point group
(``bench = "benchmarks.cli_bench:register"``); handlers import their modules lazily.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.registry import SUITES
from sammo_core.run_files import check_not_linked, write_file
from search.strategies import STRATEGIES

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from benchmarks.suites import BenchTask
    from mutators.priors import Priors
    from sammo_core.objectives import Score
    from sammo_core.runners.accounting import Usage
    from sammo_core.runners.base import Runner
    from search.candidate import Candidate
    from search.panel import Panel

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``bench`` subcommand with its ``run``, ``compare`` and ``list`` actions.

    >>> parser = argparse.ArgumentParser()
    >>> register(parser.add_subparsers())
    >>> args = parser.parse_args(["bench", "run", "quick", "--model", "local", "--out", "o"])
    >>> args.suite, args.model, args.func.__name__
    ('quick', 'local', '_run_command')
    """
    from benchmarks.ray_bench import add_ray_arguments
    from mutators.groups import describe_groups  # deferred: keeps the CLI quick to start
    from sammo_core.cli_run import add_runner_arguments, seed_argument

    parser = subparsers.add_parser(
        "bench",
        help="run benchmark suites and compare runs",
        description="Run a benchmark suite (search each task, report baseline vs optimized on "
        "test), compare two runs, or list the suites and tasks.",
    )
    actions = parser.add_subparsers(dest="bench_action", metavar="ACTION")

    run = actions.add_parser(
        "run",
        help="search every task of a suite and write a report",
        description="For each task: build the baseline program, search on the validation "
        "split, score the baseline and the winner on the test split, and write results.json, "
        "the search folders and report.md / report.html / score_vs_budget.png into --out.",
    )
    run.add_argument("suite", choices=list(SUITES), help="the suite to run")
    run.add_argument("--tasks", help="comma-separated task names (default: all in the data dir)")
    run.add_argument(
        "--proposer-model", help="model that proposes rewrites (default: --model itself)"
    )
    run.add_argument(
        "--budget",
        help="N candidates or key=value pairs (candidates=48,calls=3000,usd=2); "
        "default: the suite's",
    )
    run.add_argument("--strategy", choices=list(STRATEGIES), help="default: the suite's")
    run.add_argument(
        "--racing",
        choices=("off", "halving", "paired"),
        default="off",
        help="score candidates on a few validation rows first, on more only while they can "
        "win (as optimize --racing; default off)",
    )
    run.add_argument(
        "--operators",
        help=f"operator groups instead of the suite's: {describe_groups()}",
    )
    run.add_argument(
        "--scoring",
        choices=("labels", "generate"),
        help="labels: each task's call lists its label set, so a model that scores labels "
        "(local, local:gemma3, hf:..., a completions server with log-probabilities) answers "
        "by label likelihood; generate: the model writes its answer (default: the suite's; "
        "base-model: labels)",
    )
    run.add_argument(
        "--start-shots",
        type=int,
        help="base-model: the label-balanced examples the start program shows (default 4; 0: "
        "the instruction alone)",
    )
    run.add_argument(
        "--across",
        choices=("mean", "min"),
        default="mean",
        help="with --model given more than once: each candidate is scored on every model and "
        "the search selects on their mean (default) or on the worst model's score",
    )
    run.add_argument(
        "--priors",
        default="none",
        metavar="FILE|none",
        help="start each task's search from what paid on the OTHER tasks of FILE (a "
        "priors.json of bench run or optimize; a task's own entry is always left out); none "
        "(default): afresh",
    )
    run.add_argument("--seed", type=seed_argument, help="search seed (default 0)")
    run.add_argument(
        "--seeds",
        help="comma-separated search seeds (0,1,2): search every task once per seed, then "
        "report each seed's winner against its baseline (paired on the test rows) and the mean "
        "and spread across seeds; instead of --seed",
    )
    run.add_argument(
        "--max-rows",
        type=int,
        help="use the first N rows of train, validation and test each (in published order)",
    )
    run.add_argument(
        "--val-rows",
        type=int,
        help="use the first N validation rows (over --max-rows): what each candidate is scored on",
    )
    run.add_argument(
        "--test-rows",
        type=int,
        help="use the first N test rows (over --max-rows): what the baseline and winner report",
    )
    run.add_argument("--data-dir", type=Path, help="benchmark data folder")
    run.add_argument("--out", type=Path, required=True, help="output folder")
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the searches checkpointed in --out, keeping the (task, seed) records "
        "its results.json holds for the same settings",
    )
    add_runner_arguments(run)
    add_ray_arguments(run)
    run.set_defaults(func=_run_command)

    compare = actions.add_parser(
        "compare",
        help="compare two runs side by side",
        description="Per task: the optimized test score of each run with its interval, the "
        "difference, prompt tokens, calls and time, read from their results.json.",
    )
    compare.add_argument("first", type=Path, help="a bench run --out folder (A)")
    compare.add_argument("second", type=Path, help="another one (B)")
    compare.set_defaults(func=_compare_command)

    listing = actions.add_parser("list", help="list the suites and their tasks")
    listing.add_argument("--data-dir", type=Path, help="benchmark data folder")
    listing.set_defaults(func=_list_command)

    def show_help(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=show_help)


# -- run -------------------------------------------------------------------------------------


def _task_dir_name(task: str) -> str:
    return re.sub(r"[^\w.-]+", "_", task) or "task"


def _score_dict(score: Score | None) -> dict[str, Any] | None:
    if score is None:
        return None
    return {k: v for k, v in score.to_dict().items() if k != "per_item"}


def _per_item(score: Score | None) -> list[float] | None:
    return None if score is None or score.per_item is None else list(score.per_item)


def _scores(scores: Any) -> dict[str, Any]:
    return {name: _score_dict(s) for name, s in (scores or {}).items()}


def _for_model(bench: Any, model: str, console: Any) -> Any:
    """``bench`` as a known base model must be prompted (``local:gemma3``): a task written for
    chat gets completion mode and a newline stop, and the console says so."""
    import dataclasses

    from sammo_core.loading import with_call_options
    from sammo_core.runners.factory import is_base_model

    call = bench.program.child
    if not is_base_model(model) or call.mode == "completion":
        return bench
    stop = None if list(call.stop) else ["\n"]
    console.print(
        f"{model} is a base model: prompting {bench.name} in completion mode"
        + (" with stop '\\n'" if stop else ""),
        soft_wrap=True,
    )
    program = with_call_options(bench.program, mode="completion", stop=stop)
    return dataclasses.replace(bench, program=program)


def _chosen_tasks(args: argparse.Namespace, data_dir: Path) -> list[str]:
    from benchmarks.suites import get_suite
    from sammo_core.errors import ConfigError

    available = get_suite(args.suite).tasks(data_dir)
    if not args.tasks:
        if not available:
            raise ConfigError(
                f"no tasks of suite {args.suite!r} found in {data_dir}; fetch the data with "
                "`sammo-core data fetch all` or pass --data-dir"
            )
        return available
    chosen = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not chosen:
        raise ConfigError(f"--tasks {args.tasks!r} names no task; available: {available}")
    return chosen


async def _render(program: Any, data: Any) -> tuple[str, float]:
    """The prompt for the first row of ``data`` and the mean prompt tokens per input, from
    rendering alone (a scripted runner answers and counts the tokens; nothing is sent to a
    model)."""
    from sammo_core.graph import compile
    from sammo_core.objectives import MeanPromptTokens
    from sammo_core.runners.scripted import ScriptedRunner

    graph = compile(program)
    runner = ScriptedRunner(default="")
    tokens = MeanPromptTokens().score(await graph.run(data, runner)).value
    first = await graph.run(data[:1], runner)
    return first[0].prompt, tokens


async def _test_scores(
    bench: BenchTask, candidate: Candidate, known: Any, runner: Runner | Panel
) -> tuple[dict[str, Score], Usage]:
    """Test scores of ``candidate``: from the search result, or evaluated now."""
    from sammo_core.runners.accounting import Ledger, Usage
    from search.evaluator import Evaluator
    from search.panel import counted

    if candidate.id in known:
        return dict(known[candidate.id]), Usage()
    ledger = Ledger()
    reporter = counted(runner, ledger)
    evaluator = Evaluator(bench.test, reporter, list(bench.objectives))
    evaluation = await evaluator.evaluate(candidate.program)
    return evaluation.scores, ledger.usage


async def _run_task(
    bench: BenchTask,
    *,
    runner: Runner | Panel,
    proposer: Runner,
    out: Path,
    run_dir: Path,
    label: str,
    resume: bool,
    console: Any,
    priors: Priors | None = None,
) -> dict[str, Any]:
    from benchmarks.seeds import paired_test
    from sammo_core.cli_run import progress_bar
    from sammo_core.serialization import dumps
    from search.base import Progress as SearchProgress
    from search.priors import priors_of

    search = bench.make_search()
    steered = None
    if priors is not None and search.has_mutator:
        from mutators.priors import apply_priors

        others = priors.without(bench.name)
        console.print(f"{label}: {apply_priors(search.mutator, others)}", soft_wrap=True)
        steered = list(others.tasks)
    started = time.perf_counter()
    with progress_bar(console) as progress:
        bar = progress.add_task(label, total=search.budget.candidates)

        def show(p: SearchProgress) -> None:
            progress.update(
                bar,
                completed=p.candidates,
                description=f"{label}: step {p.step}, best {p.objective} {p.best:.3f}, "
                f"{p.usage.calls:,} calls",
            )

        result = await search.run(
            bench.program,
            train=bench.train,
            val=bench.val,
            test=bench.test,
            runner=runner,
            proposer=proposer,
            out_dir=run_dir,
            resume=resume,
            on_progress=show,
        )
    winner = bench.winner(result)
    base_test, _ = await _test_scores(bench, result.start, result.test_scores, runner)
    best_test, extra = await _test_scores(bench, winner, result.test_scores, runner)
    entries: dict[str, dict[str, Any]] = {}
    for role, cand, test in (
        ("baseline", result.start, base_test),
        ("optimized", winner, best_test),
    ):
        text, tokens = await _render(cand.program, bench.test)
        prompt_file = write_file(run_dir, f"prompts/{role}.txt", text)
        program_file = check_not_linked(run_dir, f"programs/{cand.id}.json")
        if not program_file.is_file():
            write_file(run_dir, f"programs/{cand.id}.json", dumps(cand.program))
        entries[role] = {
            "id": cand.id,
            "val": _score_dict(cand.scores.get(bench.objectives[0].name)),
            "test": _score_dict(test.get(bench.objectives[0].name)),
            # Each test row's score: what paired comparisons of two programs need.
            "test_per_item": _per_item(test.get(bench.objectives[0].name)),
            "val_scores": _scores(cand.scores),
            "test_scores": _scores(test),
            "prompt_tokens": tokens,
            "prompt_file": str(prompt_file.relative_to(out)),
            "program_file": str(program_file.relative_to(out)),
        }
    seconds = time.perf_counter() - started
    search_usage, test_usage = result.usage, result.test_usage + extra
    total = search_usage + test_usage
    primary = bench.objectives[0]
    record: dict[str, Any] = {
        "suite": bench.suite,
        "task": bench.name,
        "notes": bench.notes,
        "objective": primary.name,
        "direction": primary.direction,
        "objectives": [o.name for o in bench.objectives],
        "sizes": {
            "train": 0 if bench.train is None else len(bench.train),
            "val": len(bench.val),
            "test": len(bench.test),
        },
        "search": {
            **bench.params,
            "strategy": result.strategy,
            "params": dict(result.params),
            "stopped": result.stopped,
            "steps": result.steps,
            "candidates": len(result.candidates),
            "operators_stats": [
                {"operator": s.operator, "tries": s.tries, "wins": s.wins} for s in result.operators
            ],
        },
        "baseline": entries["baseline"],
        "optimized": entries["optimized"],
        # What this search learned (bench run writes every task's into OUT/priors.json), and
        # the tasks whose priors steered it.
        "learned": priors_of(result, search.mutator if search.has_mutator else None, bench.name)
        .by_task[bench.name]
        .to_json(),
        "priors_from": steered,
        "lineage": [c.summary() for c in result.lineage(winner)],
        "usage": {
            "search": search_usage.to_dict(),
            "test": test_usage.to_dict(),
            "total": total.to_dict(),
        },
        "calls": total.calls,
        "usd": total.usd,
        **(
            {"usage_by_model": {m: u.to_dict() for m, u in result.usage_by_model.items()}}
            if result.usage_by_model
            else {}
        ),
        "seconds": round(seconds, 3),
        "run_dir": str(run_dir.relative_to(out)),
        "winner_program": entries["optimized"]["program_file"],
    }
    # Winner - baseline on the same test rows: the paired interval and McNemar's test.
    record["paired"] = paired_test(
        base_test.get(primary.name),
        best_test.get(primary.name),
        primary.direction,
        seed=int(bench.params["seed"]),
    )
    majority = _majority_rate(bench)
    if majority is not None:
        record["majority_rate"] = majority  # what always answering the commonest label scores
    if len(bench.objectives) > 1 and entries["optimized"]["prompt_tokens"] > 0:
        record["compression_ratio"] = (
            entries["baseline"]["prompt_tokens"] / entries["optimized"]["prompt_tokens"]
        )
    return record


def _majority_rate(bench: Any) -> float | None:
    """The label accuracy of always answering the test split's commonest gold label (for a
    label objective; else ``None``): the bar a classifier must clear."""
    from sammo_core.objectives import LabelAccuracy

    primary = bench.objectives[0]
    if not isinstance(primary, LabelAccuracy) or not len(bench.test):
        return None
    found = primary.majority(bench.test.outputs)
    return None if found is None else found[1]


def _write_json(path: Path, data: Any) -> None:
    import orjson

    write_file(path.parent, path.name, orjson.dumps(data, option=orjson.OPT_INDENT_2))


def _finished(
    prior: dict[str, Any] | None, seed: int, bench: BenchTask, settings: dict[str, Any]
) -> dict[str, Any] | None:
    """The record a previous run in the same --out holds for ``bench`` at ``seed``, if it ran
    with the same model, data and search settings (``None`` otherwise)."""
    from benchmarks.seeds import is_multi_seed

    if prior is None or any(prior.get(k) != v for k, v in settings.items()):
        return None
    if is_multi_seed(prior):
        entry: dict[str, Any] = next((e for e in prior["seeds"] if e.get("seed") == seed), {})
        record = entry.get("tasks", {}).get(bench.name)
    else:
        record = prior.get("tasks", {}).get(bench.name)
    if not record:
        return None
    search = record.get("search", {})
    # The record keeps the strategy's class name where the suite's params hold its short name.
    same = all(search.get(k) == v for k, v in bench.params.items() if k != "strategy")
    # Written only when on, so records from before racing existed still match an off run.
    same = same and search.get("racing", "off") == bench.params.get("racing", "off")
    if not same or search.get("strategy") != type(bench.make_search()).__name__:
        return None
    return dict(record)


def _suite_options(args: argparse.Namespace, seed: int) -> Any:
    from benchmarks.suites import SuiteOptions

    return SuiteOptions(
        budget=args.budget,
        strategy=args.strategy,
        seed=seed,
        max_rows=args.max_rows,
        operators=args.operators,
        concurrency=args.concurrency,
        val_rows=args.val_rows,
        test_rows=args.test_rows,
        scored=None if args.scoring is None else args.scoring == "labels",
        start_shots=args.start_shots,
        racing=args.racing,
    )


def _new_results(
    args: argparse.Namespace, suite: str, settings: dict[str, Any], seeds: tuple[int, ...]
) -> dict[str, Any]:
    """``results.json`` before any task ran: a one-seed run's ``tasks``, or a multi-seed run's
    ``seeds`` (one entry per seed, each with a one-seed run's tasks and errors) and
    ``aggregate``."""
    from benchmarks.seeds import aggregate
    from mutators.priors import no_priors

    multi = len(seeds) > 1
    options = {
        "budget": args.budget,
        "strategy": args.strategy,
        "seed": None if multi else seeds[0],
        "max_rows": args.max_rows,
        "val_rows": args.val_rows,
        "test_rows": args.test_rows,
        "operators": args.operators,
        **({"racing": args.racing} if args.racing != "off" else {}),
        **({} if no_priors(args.priors) else {"priors": args.priors}),
    }
    results: dict[str, Any] = {
        "suite": suite,
        **settings,
        "options": options | ({"seeds": list(seeds)} if multi else {}),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if multi:
        results["seeds"] = [{"seed": s, "tasks": {}, "errors": {}} for s in seeds]
        results["aggregate"] = aggregate([])
    else:
        results["tasks"] = {}
    results["errors"] = {}
    return results


class _Run:
    """One ``bench run``: its arguments, what it reads and writes, and its (task, seed) loop."""

    def __init__(self, args: argparse.Namespace, console: Any) -> None:
        from benchmarks.datasets import resolve_data_dir
        from benchmarks.seeds import choose_seeds
        from benchmarks.suites import get_suite

        self.args, self.console = args, console
        self.seeds = choose_seeds(args.seed, args.seeds)
        self.multi = len(self.seeds) > 1
        self.data_dir = resolve_data_dir(args.data_dir)
        self.suite = get_suite(args.suite)
        _suite_options(args, self.seeds[0])  # bad options fail before anything is written
        self.names = _chosen_tasks(args, self.data_dir)
        self.out: Path = args.out
        self.out.mkdir(parents=True, exist_ok=True)
        self.models = list(getattr(args, "models", None) or [args.model])
        if len(self.models) > 1:
            from sammo_core.errors import ConfigError

            if args.ray is not None:
                raise ConfigError(
                    f"--ray runs jobs on one model; with {len(self.models)} --model, drop --ray"
                )
            from search.panel import check_one_model

            check_one_model(args.racing, len(self.models))
        self.proposer_model = args.proposer_model or args.model
        self.settings = {
            "model": args.model,
            **({"models": self.models, "across": args.across} if len(self.models) > 1 else {}),
            "proposer_model": self.proposer_model,
            "data_dir": str(self.data_dir),
        }
        self.priors = _load_priors(args.priors)
        resumable = args.resume and (self.out / "results.json").is_file()
        self.prior = _load_results(self.out) if resumable else None
        self.results = _new_results(args, self.suite.name, self.settings, self.seeds)

    async def run_all(self) -> None:
        """Every (task, seed), seed by seed (each finished seed is a whole run of the suite),
        rewriting ``results.json`` after each; with ``--ray``, each a job on a Ray cluster
        (:mod:`benchmarks.ray_bench`), their records taken in the same order."""
        from benchmarks.seeds import aggregate

        results = self.results
        started = time.perf_counter()
        pairs = [(k, seed, name) for k, seed in enumerate(self.seeds) for name in self.names]
        if self.args.ray is not None:
            from benchmarks.ray_bench import outcomes_on_ray

            outcomes = outcomes_on_ray(self, pairs)
        else:
            outcomes = self.outcomes_here(pairs)
        i = 0
        async for record, error in outcomes:
            k, seed, name = pairs[i]
            i += 1
            entry = results["seeds"][k] if self.multi else results
            if error is not None:
                where = self.where(i, seed, len(pairs))
                self.console.print(f"[red]{name}{where}: {error}[/]")
                entry["errors"][name] = error
                if self.multi:
                    results["errors"][f"{name} (seed {seed})"] = error
            elif record is not None:
                entry["tasks"][record["task"]] = record
            if self.multi:
                results["aggregate"] = aggregate(results["seeds"])
            results["seconds"] = round(time.perf_counter() - started, 3)
            _write_json(self.out / "results.json", results)

    def where(self, i: int, seed: int, total: int) -> str:
        """How the console names job ``i`` of ``total`` (its seed, in a multi-seed run)."""
        return f" seed {seed} ({i}/{total})" if self.multi else ""

    async def outcomes_here(
        self, pairs: Sequence[tuple[int, int, str]]
    ) -> AsyncIterator[tuple[dict[str, Any] | None, str | None]]:
        """Each ``(k, seed, task)`` job in this process, one after the other: its record, or
        its error's text."""
        from sammo_core.errors import SammoError
        from sammo_core.runners.factory import build_runner_from_args

        args = self.args
        stacks = {model: build_runner_from_args(args, model=model) for model in self.models}
        task_stack = stacks[args.model]
        proposer_stack = stacks.get(self.proposer_model) or build_runner_from_args(
            args, model=self.proposer_model
        )
        scoring: Any = task_stack if len(stacks) == 1 else stacks
        try:
            for i, (_, seed, name) in enumerate(pairs, start=1):
                where = self.where(i, seed, len(pairs))
                try:
                    record = await self.run_one(seed, name, where, scoring, proposer_stack)
                except SammoError as exc:
                    yield None, str(exc)
                else:
                    yield record, None
        finally:
            for stack in stacks.values():
                await stack.aclose()
            if proposer_stack not in stacks.values():
                await proposer_stack.aclose()

    async def run_one(
        self,
        seed: int,
        name: str,
        where: str,
        task_stack: Any,
        proposer_stack: Any,
        *,
        resume: bool | None = None,
    ) -> dict[str, Any]:
        """The record of task ``name`` at ``seed``: kept from the previous run (``--resume``)
        or searched now (continuing its checkpoint with ``resume``; default ``--resume``). The
        one job of a suite, in this process or in a Ray worker."""
        args, console, suite = self.args, self.console, self.suite
        bench = suite.build(name, self.data_dir, _suite_options(args, seed))
        if len(self.models) == 1:  # with several, each model gets its own call settings
            bench = _for_model(bench, args.model, console)
        record = _finished(self.prior, seed, bench, self.settings)
        if record is not None:
            console.print(
                f"[bold]{suite.name}/{bench.name}[/]{where}: finished in "
                f"{self.out / 'results.json'}, kept (--resume)",
                soft_wrap=True,
            )
            return record
        console.print(
            f"[bold]{suite.name}/{bench.name}[/]{where}: train "
            f"{0 if bench.train is None else len(bench.train)}, val {len(bench.val)}, test "
            f"{len(bench.test)}; {bench.params['strategy']}, budget "
            f"{bench.params['budget']}, operators {bench.params['operators']}",
            soft_wrap=True,
        )
        run_dir = self.out / _task_dir_name(bench.name)
        runner: Any  # the stacks as built: the search counts on them
        settings = None
        if isinstance(task_stack, dict):  # several models: each candidate scored on each
            from sammo_core.runners.factory import BASE_MODELS
            from search.panel import panel_of

            runner, settings = panel_of(
                {m: stack.runner for m, stack in task_stack.items()},
                bench.program,
                args.across,
                base_models=BASE_MODELS,
            )
            console.print(
                f"{bench.name}: each candidate on {', '.join(settings)} ("
                + "; ".join(f"{m}: {v['mode']}" for m, v in settings.items())
                + ")",
                soft_wrap=True,
            )
        else:
            runner = task_stack.runner
        record = await _run_task(
            bench,
            runner=runner,
            proposer=proposer_stack.runner,
            out=self.out,
            run_dir=run_dir / f"seed-{seed}" if self.multi else run_dir,
            label=f"{bench.name} seed {seed}" if self.multi else bench.name,
            resume=args.resume if resume is None else resume,
            console=console,
            priors=self.priors,
        )
        if settings is not None:
            record["call_settings"] = settings  # each model's mode and stops beside the program
        return record


def _run_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from sammo_core.errors import ConfigError
    from sammo_core.processes import interruption, lock_folder

    console = Console(stderr=True, soft_wrap=True)  # a log keeps each line whole
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {str(args.out)!r} is a file; pass a folder for the run")
    with lock_folder(args.out):  # one process writes a bench folder at a time
        run = _Run(args, console)
        try:
            asyncio.run(run.run_all())
        except KeyboardInterrupt:
            run.results["stopped"] = f"interrupted ({interruption()})"
            _write_json(run.out / "results.json", run.results)
            console.print(
                f"{run.results['stopped']}: the tasks done so far are in "
                f"{run.out / 'results.json'}, marked stopped; continue with --resume",
                soft_wrap=True,
            )
            return 130
        return _report_run(run, console)


def _load_priors(spec: str) -> Priors | None:
    """``--priors FILE|none``."""
    from mutators.priors import Priors, no_priors

    return None if no_priors(spec) else Priors.load(spec)


def suite_priors(results: dict[str, Any]) -> Priors:
    """What every task's searches learned (seeds summed), from a bench ``results.json``."""
    from mutators.priors import Learned, Priors

    runs = results.get("seeds", [results])
    by_task: dict[str, Learned] = {}
    for run in runs:
        for name, record in run["tasks"].items():
            if "learned" not in record:
                continue  # a record of a release before priors
            learned = Learned.from_json(record["learned"], f"results.json, task {name!r}")
            by_task[name] = by_task[name] + learned if name in by_task else learned
    return Priors(by_task)


def _report_run(run: _Run, console: Any) -> int:
    from benchmarks.report import write_report

    _print_run_table(run.results)
    written = write_report(run.out, run.results)
    learned = suite_priors(run.results)
    if learned.by_task:
        written["priors"] = write_file(run.out, "priors.json", learned.dumps())
    files = ", ".join(str(p) for p in [run.out / "results.json", *written.values()])
    console.print(f"wrote {files}", soft_wrap=True)
    return 1 if run.results["errors"] else 0


def _wide_console() -> Any:
    """A console for tables: the terminal's width, or unlimited when piped to a file."""
    from sammo_core.console import table_console

    return table_console()


def _print_run_table(results: dict[str, Any]) -> None:
    from rich.table import Table

    from benchmarks.report import SUMMARY_HEADER, summary_rows
    from benchmarks.seeds import (
        AGGREGATE_HEADER,
        PER_SEED_HEADER,
        aggregate_rows,
        is_multi_seed,
        per_seed_rows,
    )

    title = f"{results['suite']} on {results['model']}: test split, 95% intervals"
    tables: list[tuple[str, Sequence[str], list[tuple[str, ...]]]] = [
        (title, SUMMARY_HEADER, summary_rows(results))
    ]
    if is_multi_seed(results):
        tables = [
            (f"{title}, per seed (paired)", PER_SEED_HEADER, per_seed_rows(results)),
            (
                f"{results['suite']} on {results['model']}: across seeds",
                AGGREGATE_HEADER,
                aggregate_rows(results),
            ),
        ]
    console = _wide_console()
    for heading, header, rows in tables:
        table = Table(title=heading)
        for i, column in enumerate(header):
            table.add_column(column, justify="left" if i < 2 else "right", overflow="fold")
        for row in rows:
            # Intervals on a second line keep the table readable in narrow terminals.
            table.add_row(*(cell.replace(" [", "\n[").replace(" (", "\n(") for cell in row))
        console.print(table)
    console.print(f"total time {results.get('seconds', 0):.1f} s")


# -- compare ---------------------------------------------------------------------------------


def _load_results(path: Path) -> dict[str, Any]:
    from sammo_core.errors import ConfigError, DataError
    from sammo_core.run_files import damaged_file, read_json

    file = path / "results.json" if path.is_dir() else path
    if not file.is_file():
        raise ConfigError(f"{path} holds no results.json: is it a `sammo-core bench run` --out?")
    data = read_json(file, what="bench results file")
    if not isinstance(data, dict):
        raise DataError(f"{file} is not a bench results file: not a JSON object")
    with damaged_file(file, "a bench results file"):
        compare_rows(data, data)  # every field a comparison reads, checked now, on this file
        _describe("A", path, data)
    return data


def _optimized_by_task(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per task of a run: its objective, the optimized test score as a cell and a value, its
    prompt tokens, calls and seconds. A multi-seed run gives the mean over its seeds (the cell:
    mean ± sample sd, and how many seeds), its tokens averaged and its calls and time summed."""
    from benchmarks.report import format_score
    from benchmarks.seeds import is_multi_seed, spread

    if not is_multi_seed(run):
        return {
            name: {
                "objective": task["objective"],
                "cell": format_score(task["optimized"].get("test")),
                "value": (task["optimized"].get("test") or {}).get("value"),
                "tokens": task["optimized"]["prompt_tokens"],
                "calls": task["calls"],
                "seconds": task["seconds"],
            }
            for name, task in run.get("tasks", {}).items()
        }
    views: dict[str, dict[str, Any]] = {}
    for name, agg in run.get("aggregate", {}).get("tasks", {}).items():
        records = [e["tasks"][name] for e in run["seeds"] if name in e.get("tasks", {})]
        stats = agg["winner_test"]
        std = "-" if stats["std"] is None else f"{stats['std']:.3f}"
        views[name] = {
            "objective": agg["objective"],
            "cell": "-" if not stats["n"] else f"{stats['mean']:.3f} ± {std} ({stats['n']} seeds)",
            "value": stats["mean"],
            "tokens": spread([r["optimized"]["prompt_tokens"] for r in records])["mean"],
            "calls": sum(r["calls"] for r in records),
            "seconds": sum(r["seconds"] for r in records),
        }
    return views


def compare_rows(first: dict[str, Any], second: dict[str, Any]) -> list[tuple[str, ...]]:
    """Rows of the comparison table for the tasks both runs hold (a multi-seed run: its mean
    over seeds).

    >>> a = {"tasks": {"t": {"objective": "acc", "optimized": {"test": {"value": 0.5,
    ...     "ci_low": 0.4, "ci_high": 0.6}, "prompt_tokens": 100}, "calls": 10, "seconds": 2}}}
    >>> b = {"tasks": {"t": {"objective": "acc", "optimized": {"test": {"value": 0.7,
    ...     "ci_low": 0.6, "ci_high": 0.8}, "prompt_tokens": 80}, "calls": 12, "seconds": 3}}}
    >>> compare_rows(a, b)[0]
    ('t', 'acc', '0.500 [0.400, 0.600]', '0.700 [0.600, 0.800]', '+0.200', '100 / 80', '10 / 12', '2.0 / 3.0')
    """  # noqa: E501
    rows: list[tuple[str, ...]] = []
    second_tasks = _optimized_by_task(second)
    for name, a in _optimized_by_task(first).items():
        b = second_tasks.get(name)
        if b is None:
            continue
        both = a["value"] is not None and b["value"] is not None
        rows.append(
            (
                name,
                a["objective"] if a["objective"] == b["objective"] else "-",
                a["cell"],
                b["cell"],
                f"{b['value'] - a['value']:+.3f}" if both else "-",
                f"{a['tokens']:.0f} / {b['tokens']:.0f}",
                f"{a['calls']:,} / {b['calls']:,}",
                f"{a['seconds']:.1f} / {b['seconds']:.1f}",
            )
        )
    return rows


def _describe(label: str, path: Path, r: dict[str, Any]) -> str:
    o = r.get("options", {})
    return (
        f"{label} = {path}: {r.get('suite')} on {r.get('model')} (strategy "
        f"{o.get('strategy') or 'default'}, budget {o.get('budget') or 'default'}, "
        + (
            f"seeds {', '.join(map(str, o['seeds']))}"
            if o.get("seeds")
            else f"seed {o.get('seed')}"
        )
        + f", {r.get('date', '?')})"
    )


def _compare_command(args: argparse.Namespace) -> int:
    from rich.table import Table

    first, second = _load_results(args.first), _load_results(args.second)
    console = _wide_console()
    console.print(_describe("A", args.first, first), soft_wrap=True)
    console.print(_describe("B", args.second, second), soft_wrap=True)
    table = Table(title="optimized test score: A vs B (95% intervals; over seeds: mean ± sd)")
    header = ("task", "objective", "A", "B", "B - A", "tokens A / B", "calls A / B", "s A / B")
    for i, column in enumerate(header):
        table.add_column(column, justify="left" if i < 2 else "right", overflow="fold")
    rows = compare_rows(first, second)
    for row in rows:
        table.add_row(*(cell.replace(" [", "\n[") for cell in row))
    if rows:
        console.print(table)
    tasks_a, tasks_b = set(_optimized_by_task(first)), set(_optimized_by_task(second))
    only_a, only_b = sorted(tasks_a - tasks_b), sorted(tasks_b - tasks_a)
    if only_a:
        console.print(f"only in A ({args.first}): {', '.join(only_a)}", soft_wrap=True)
    if only_b:
        console.print(f"only in B ({args.second}): {', '.join(only_b)}", soft_wrap=True)
    if not rows:
        console.print("no task is in both runs")
    return 0


# -- list ------------------------------------------------------------------------------------


def _list_command(args: argparse.Namespace) -> int:
    from rich.table import Table

    from benchmarks.datasets import resolve_data_dir
    from sammo_core.errors import ConfigError

    try:
        root: Path | None = resolve_data_dir(args.data_dir)
    except ConfigError:
        if args.data_dir is not None:
            raise
        root = None  # nothing fetched yet: still list the suites and what they need
    where = f"tasks found in {root}" if root is not None else "no data folder found yet"
    table = Table(title=f"Benchmark suites ({where})")
    table.add_column("suite", style="bold")
    table.add_column("tasks", justify="right")
    table.add_column("names", overflow="fold")
    table.add_column("data it needs", overflow="fold")
    table.add_column("what it searches", overflow="fold")
    for _, suite in SUITES.loadable():
        tasks = suite.tasks(root) if root is not None else []
        needs = suite.data
        fetch = " ".join(f"sammo-core data fetch {n};" for n in needs).rstrip(";")
        names = ", ".join(tasks) if tasks else f"(missing: {fetch or 'sammo-core data fetch all'})"
        table.add_row(suite.name, str(len(tasks)), names, ", ".join(needs), suite.description)
    _wide_console().print(table)
    return 0
