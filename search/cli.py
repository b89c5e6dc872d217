"""``sammo-core optimize`` and ``sammo-core export``.

``optimize`` searches from a program: proposers learn from the training split, the search
selects on the validation split, and the test split only reports the start vs the best. The
splits come from files (``--val-data``, ``--test-data``) or are drawn from ``--data`` with
``--seed``. It writes the trace, checkpoint, result and
programs into RUN_DIR (``--resume`` continues a stopped run). ``export`` turns a run's winner
(or a Pareto pick) into a portable prompt file with a manifest.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mutators.groups import describe_groups
from sammo_core.aio import run_keeping
from sammo_core.cli_run import (
    add_program_arguments,
    add_runner_arguments,
    labelled_program,
    load_program_from_args,
    seed_argument,
    table_console,
)
from sammo_core.errors import ConfigError
from sammo_core.objectives import OBJECTIVES
from sammo_core.run_files import write_file
from sammo_core.runners.pricing import cost_text
from search.cli_inputs import check_out_dir, check_out_path, splits
from search.cli_soft import ADAPTER_DIR, add_prompt_tuning_arguments, program_adapter, prompt_tune
from search.priors import priors_of
from search.racing import RACING_MODES, Racing, parse_rungs
from search.strategies import STRATEGIES, pick_strategy

if TYPE_CHECKING:
    from mutators.base import Mutator
    from sammo_core.objectives import Objective
    from search.base import Progress, Search
    from search.result import SearchResult

__all__ = ["register_export", "register_optimize"]

#: Soft prompt tuning: --strategy takes it beside the search strategies, but it is no Search.
PROMPT_TUNING = "prompt-tuning"
#: ``--budget`` when none is given: candidates of a search, steps of prompt tuning.
DEFAULT_BUDGET = 16
DEFAULT_TRAINING_STEPS = 50


class _OptimizeHelp(argparse.Action):
    """``optimize --help``: the prompt-tuning options only after ``--strategy prompt-tuning``,
    so every other search's help lists only what it takes."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if getattr(namespace, "strategy", None) != PROMPT_TUNING:
            hidden = set(parser.get_default("_tuning_options") or ())
            for action in parser._actions:
                if action.dest in hidden:
                    action.help = argparse.SUPPRESS
            parser.epilog = (
                "Soft prompt tuning takes more options: sammo-core optimize --strategy "
                "prompt-tuning --help"
            )
        else:
            parser.epilog = None
        parser.print_help()
        parser.exit()


def register_optimize(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``optimize`` subcommand."""
    p = subparsers.add_parser(
        "optimize",
        help="search for a better program",
        description="Search over mutations of PROGRAM: proposers learn from the training "
        "split, the search selects on the validation split, and the test split is scored for "
        "the start and the winner only.",
        epilog="The options of soft prompt tuning: sammo-core optimize --strategy prompt-tuning "
        "--help",
        add_help=False,
    )
    p.add_argument(
        "-h",
        "--help",
        action=_OptimizeHelp,
        nargs=0,
        help="show this help and exit (with --strategy prompt-tuning before it: that "
        "strategy's options too)",
    )
    add_program_arguments(p)
    p.add_argument(
        "--data",
        type=Path,
        required=True,
        help="labelled data: .jsonl, .json, .csv; the training split, plus the splits not "
        "given as files (drawn by --split and --seed)",
    )
    p.add_argument(
        "--val-data",
        type=Path,
        help="a separate validation file, the split the search selects on, used as it is "
        "(else drawn from --data)",
    )
    p.add_argument(
        "--test-data",
        type=Path,
        help="a separate test file, scored for the start and the winners only, used as it is "
        "(else drawn from --data)",
    )
    p.add_argument(
        "--split",
        help="train,val,test fractions of --data, shuffled with --seed (default "
        "0.5,0.25,0.25); the parts given as files are left out and the rest rescaled. With "
        "both --val-data and --test-data, all of --data is the training split and no seed "
        "changes any split",
    )
    p.add_argument("--proposer-model", help="model that proposes rewrites (default: --model)")
    p.add_argument(
        "--strategy",
        choices=[*STRATEGIES, PROMPT_TUNING],
        default="beam",
        help="beam (default), evolution (regularized evolution), enumerate (over pg.oneof "
        "choices in the program), random, or prompt-tuning (trains a soft prompt by gradient "
        "descent on --model hf:gemma3: training, not a search; --train-budget counts its steps)",
    )
    p.add_argument(
        "--operators",
        default="structure,examples,format,compression",
        help=f"operator groups, comma-separated: {describe_groups()} "
        "(content, apo, ape, opro and compression's Shorten call the proposer model; "
        "structure, examples, format and compression's RemoveFiller call none)",
    )
    p.add_argument(
        "--budget",
        default=None,
        help="N candidates, or key=value pairs: candidates=40,calls=2000,tokens=...,usd=... "
        "(calls, tokens and usd hold for the task and proposer calls together, across "
        f"--resume; each call's worst case is reserved before it is sent; default "
        f"{DEFAULT_BUDGET} candidates). Prompt tuning trains instead of searching: its budget "
        "is --train-budget (steps), which --budget still sets there",
    )
    p.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help="completion cap per input of task calls whose program sets none (default: the "
        "longest gold output in bytes + 16); proposer calls are capped at 1024",
    )
    p.add_argument(
        "--objective",
        default=None,
        help="comma-separated, primary first, e.g. accuracy,mean_prompt_tokens; of: "
        f"{', '.join(OBJECTIVES)}, label_accuracy:LABEL,LABEL,...; with several --model, "
        "NAME@MODEL is one model's score (a Pareto front across models: "
        "label_accuracy@local,label_accuracy@local:gemma3)",
    )
    p.add_argument(
        "--seed",
        type=seed_argument,
        default=0,
        help="seed of the data split and of every random choice of the search (default 0)",
    )
    p.add_argument("--width", type=int, default=4, help="beam width")
    p.add_argument("--depth", type=int, default=4, help="beam depth (steps)")
    p.add_argument(
        "--pipeline",
        action="store_true",
        help="beam: propose each step while the one before is scored, from the beam before "
        "that (no idle slots between steps; a trace of its own, the same for the same seed)",
    )
    p.add_argument("--population", type=int, default=8, help="evolution population")
    p.add_argument(
        "--cycles",
        type=int,
        default=None,
        help="evolution cycles (default: until the budget is spent or the search converges)",
    )
    p.add_argument(
        "--parallel",
        type=int,
        default=1,
        help="evolution: tournaments per cycle, their children evaluated at once (default 1, "
        "the classic one child per cycle; more keeps the --concurrency slots busy)",
    )
    p.add_argument(
        "--racing",
        choices=RACING_MODES,
        default="off",
        help="score each candidate on a few validation rows first and on more only while it "
        "can still win: 'paired' stops it once its paired interval against the best so far "
        "lies below 0; 'halving' keeps the top --keep share of each rung (asynchronous "
        "successive halving); 'off' scores every candidate on every row (default: off)",
    )
    p.add_argument(
        "--rungs",
        type=parse_rungs_arg,
        default=(),
        metavar="N,M,...",
        help="with --racing: validation rows scored by the end of each rung before the whole "
        "split, e.g. 10,20 (default: a quarter and a half of the split, at least 8 rows)",
    )
    p.add_argument(
        "--keep",
        type=float,
        default=1 / 3,
        help="with --racing halving: the share of a rung's candidates that go on (default 1/3)",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        dest="ray_pool",
        help="spread the model's calls over Ray workers (the [ray] extra): on the cluster at "
        "ADDRESS, or a local one; pays for embedded models, whose calls compute in the worker",
    )
    p.add_argument(
        "--ray-workers",
        type=int,
        dest="ray_pool_workers",
        metavar="N",
        help="Ray workers serving the model (default: the CPU count)",
    )
    p.add_argument(
        "--across",
        choices=("mean", "min"),
        default="mean",
        help="with --model given more than once: select on the mean of the models' scores "
        "(default) or on the worst model's",
    )
    p.add_argument(
        "--priors",
        default="none",
        metavar="FILE|none",
        help="start from what paid on other tasks: a priors.json written by optimize "
        "(RUN_DIR/priors.json) or bench run (OUT/priors.json); none (default) starts afresh",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="RUN_DIR for the trace, checkpoint and result; must be new or empty unless "
        "--resume or --force",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    p.add_argument(
        "--force",
        action="store_true",
        help="start afresh in a RUN_DIR that holds an earlier run, replacing its files",
    )
    add_runner_arguments(p)
    tuning = add_prompt_tuning_arguments(p)
    p.set_defaults(func=_optimize, _tuning_options=[a.dest for a in tuning._group_actions])


def parse_rungs_arg(text: str) -> tuple[int, ...]:
    """``--rungs`` for argparse: its error names the flag and an example."""
    try:
        return parse_rungs(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--rungs ")) from None


def _strategy(args: argparse.Namespace, mutator: Mutator, objectives: list[Objective]) -> Search:
    from search.budget import SearchBudget
    from search.strategies import StrategySettings

    if args.pipeline and args.strategy != "beam":
        raise ConfigError(
            f"--pipeline is for --strategy beam, not {args.strategy}: drop --pipeline"
        )
    settings = StrategySettings(
        width=args.width,
        depth=args.depth,
        population=args.population,
        cycles=args.cycles,
        parallel=args.parallel,
        steps=args.depth,
        pipelined=args.pipeline or None,
    )
    factory = pick_strategy(args.strategy)
    return factory(
        mutator if factory.needs_mutator else None,
        settings,
        objectives=objectives,
        budget=SearchBudget.parse(args.budget),
        seed=args.seed,
        max_concurrency=args.concurrency,
        max_tokens=args.max_tokens,
        racing=Racing(args.racing, rungs=args.rungs, keep=args.keep),
    )


def use_priors(spec: str, mutator: Mutator | None, strategy: str) -> str | None:
    """``--priors FILE|none``: give the search's ``mutator`` the priors in FILE; returns the
    line to print (``None`` for none).

    >>> use_priors("none", None, "enumerate") is None
    True
    >>> use_priors("p.json", None, "enumerate")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: --priors p.json: --strategy enumerate draws no operators, \
so priors cannot steer it; use --strategy beam, evolution or random, or --priors none
    """
    from mutators.priors import Priors, apply_priors, no_priors

    if no_priors(spec):
        return None
    if mutator is None:
        raise ConfigError(
            f"--priors {spec}: --strategy {strategy} draws no operators, so priors cannot "
            "steer it; use --strategy beam, evolution or random, or --priors none"
        )
    return f"{apply_priors(mutator, Priors.load(spec))} (from {spec})"


def what_can_change(mutator: Mutator, program: Any) -> str:
    """Which operators find something to change in ``program``, and which find nothing (a
    prompt file without headings gives the structure operators nothing to drop or reorder).

    >>> from mutators import ChangeExampleCount, DropSection, Mixture
    >>> from sammo_core import GenerateText, InputData, MetaPrompt, Output, Section
    >>> program = Output(GenerateText(MetaPrompt([Section("Task", ["Say yes."]), InputData()])))
    >>> print(what_can_change(Mixture([DropSection(), ChangeExampleCount()]), program))
    operators that can change this program: DropSection; nothing to change for: ChangeExampleCount
    """
    from mutators.mixture import Mixture

    operators = mutator.operators if isinstance(mutator, Mixture) else (mutator,)
    able = [op.name for op in operators if op.applicable(program)]
    unable = [op.name for op in operators if op.name not in able]
    line = f"operators that can change this program: {', '.join(able) or 'none'}"
    if unable:
        line += f"; nothing to change for: {', '.join(unable)}"
    if not able:
        line += (
            " (give the prompt file headings (# Task, # Examples, ...) or write the program in "
            "Python so the operators have sections, paragraphs and examples to work on)"
        )
    return line


def progress_line(p: Progress) -> str:
    """One line of a search's progress: step, candidates, best score, calls, tokens."""
    budget = p.budget
    parts = [f"step {p.step}" + (f"/{p.max_steps}" if p.max_steps else "")]
    parts.append(
        f"candidates {p.candidates}" + (f"/{budget.candidates}" if budget.candidates else "")
    )
    parts.append(f"best {p.objective} {p.best:.3f}")
    # A calls budget counts cache hits too; what was paid (sent to the model) goes beside it.
    made = p.usage.calls + p.usage.cache_hits
    paid = f" ({p.usage.calls} paid)" if p.usage.cache_hits else ""
    parts.append(f"calls {made}" + (f"/{budget.calls}" if budget.calls else "") + paid)
    parts.append(f"tokens {p.usage.total_tokens:,}")
    return " · ".join(parts)


def _written_examples(args: argparse.Namespace, loaded: Any, train: Any, console: Any) -> Any:
    """The program's examples drawn from the training split: a program file's
    ``make_program(examples)`` is built from it (unless ``--examples`` is given), and a prompt
    file's written examples become an Examples node over them and the training rows, so the
    examples operators have something to change (said on the console)."""
    import dataclasses

    from sammo_core.example_blocks import extract_examples
    from sammo_core.prompt_files import PROMPT_FILE_SUFFIXES

    if loaded.make_program is not None and args.examples is None:
        return load_program_from_args(args, loaded.with_examples(train))
    if loaded.path.suffix.lower() not in PROMPT_FILE_SUFFIXES:
        return loaded
    program, note = extract_examples(loaded.program, train)
    if note is None:
        return loaded
    console.print(f"prompt file: {note}", highlight=False)
    return dataclasses.replace(loaded, program=program)


def _labelled(args: argparse.Namespace, loaded: Any, tables: list[Any]) -> tuple[Any, str]:
    """The program with ``--labels``/``--calibrate`` applied (``--labels auto`` reads the
    label set from the splits the search learns and selects on), and the objective spec."""
    loaded, implied = labelled_program(args, loaded, tables)
    return loaded, args.objective or loaded.objective or implied or "accuracy"


def _default_budget(args: argparse.Namespace, console: Any) -> None:
    """Fill in ``--budget`` when it is not given, and say so. Prompt tuning's budget is
    ``--train-budget`` (training steps); ``--budget`` still sets it, its old spelling."""
    from sammo_core.errors import ConfigError

    tuning = args.strategy == PROMPT_TUNING
    train = getattr(args, "train_budget", None)
    if train is not None:
        if not tuning:
            raise ConfigError(
                f"--train-budget {train} is prompt tuning's (--strategy prompt-tuning); a "
                "search's budget is --budget (candidates, or candidates=N,calls=N,...)"
            )
        if args.budget is not None:
            raise ConfigError(
                f"--train-budget {train} and --budget {args.budget} both set prompt tuning's "
                "training budget; pass --train-budget alone"
            )
        args.budget = train
    if args.budget is not None:
        return
    args.budget = str(DEFAULT_TRAINING_STEPS if tuning else DEFAULT_BUDGET)
    flag, unit = ("--train-budget", "training steps") if tuning else ("--budget", "candidates")
    console.print(f"budget: {args.budget} {unit} (the default; {flag} to change it)")


def _optimize(args: argparse.Namespace) -> int:
    from rich.console import Console

    from sammo_core.processes import interruption, lock_folder

    console = Console(stderr=True, soft_wrap=True)  # a log keeps each line whole
    _default_budget(args, console)
    check_out_path(args.out, resume=args.resume, force=args.force)
    with lock_folder(args.out):  # one process writes a run folder at a time
        if args.strategy == PROMPT_TUNING:
            return prompt_tune(args)
        check_out_dir(args.out, resume=args.resume, force=args.force)
        try:
            return _search(args, console)
        except KeyboardInterrupt:
            console.print(
                f"interrupted ({interruption()}): the checkpoint in {args.out} keeps every "
                f"step done; continue with --resume --out {args.out}"
            )
            return 130


def _meta(
    args: argparse.Namespace, loaded: Any, objective_spec: str, splits: tuple[Any, Any, Any]
) -> dict[str, Any]:
    """What ``run.json`` records of an optimize run: its options, files and data hashes."""
    train, val, test = splits
    return {
        "model": args.model,
        "proposer_model": args.proposer_model or args.model,
        "program": str(args.program),
        "data": str(args.data),
        "val_data": None if args.val_data is None else str(args.val_data),
        "test_data": None if args.test_data is None else str(args.test_data),
        "data_hash": {
            "train": train.content_hash(),
            "val": val.content_hash(),
            "test": test.content_hash(),
        },
        "strategy": args.strategy,
        "operators": args.operators,
        "budget": args.budget,
        "seed": args.seed,
        "objective": objective_spec,
        "input_field": args.input_field or loaded.input_field,
        "output_field": args.output_field or loaded.output_field,
        "input_fields": None if loaded.input_fields is None else list(loaded.input_fields),
        "priors": args.priors,
        **(
            {
                "models": _models(args),
                "across": args.across,
                "call_settings": getattr(args, "call_settings", None),
            }
            if len(_models(args)) > 1
            else {}
        ),
    }


def _print_requests(task: Any, proposer: Any) -> None:
    """What the calls cost on the wire: every attempt, the retries by cause, the waits."""
    from sammo_core.runners.factory import runner_stats

    requests = {"task model": runner_stats(task)}
    if proposer is not task:
        requests["proposer model"] = runner_stats(proposer)
    for who, stats in requests.items():
        if stats.attempts:
            table_console().print(f"{who}: {stats.summary()}")


def _models(args: argparse.Namespace) -> list[str]:
    """The models of ``--model``, one or more, in order."""
    return getattr(args, "models", None) or [args.model]


def _model_stacks(
    args: argparse.Namespace, console: Any, program: Any, selects_on: str = ""
) -> tuple[list[str], dict[str, Any], Any, Any]:
    """The models of ``--model`` (one or more), a runner stack for each, the proposer's stack,
    and what scores candidates: the one model's stack, or a panel of them (``--across``),
    each model with the call settings it needs for ``program`` (a base model: completion)."""
    from sammo_core.runners.factory import build_runner_from_args

    models = _models(args)
    # One stack per model: the same endpoint, cache, timeout and limits; only the model differs.
    stacks = {model: build_runner_from_args(args, model=model) for model in models}
    proposer = stacks[models[0]]
    if args.proposer_model and args.proposer_model != args.model:
        proposer = stacks.get(args.proposer_model) or build_runner_from_args(
            args, model=args.proposer_model
        )
    scoring: Any = stacks[models[0]].runner  # the stack as built, accounting included
    if len(models) > 1:
        from sammo_core.runners.factory import BASE_MODELS
        from search.panel import panel_of

        scoring, settings = panel_of(
            {m: s.runner for m, s in stacks.items()},
            program,
            args.across,
            base_models=BASE_MODELS,
        )
        args.call_settings = settings  # recorded in run.json, and by export in the manifests
        console.print(
            f"scoring every candidate on {len(models)} models ({', '.join(models)}); the "
            f"search selects on {selects_on or 'their ' + args.across}",
            highlight=False,
        )
    return models, stacks, proposer, scoring


def _selects_on(args: argparse.Namespace, objectives: Sequence[Objective]) -> str:
    """What a search over several models selects on, said on the console ("" for the models'
    combined score); refuses what several models cannot do (racing, an objective's unknown
    model)."""
    from sammo_core.objectives import OnModel
    from search.panel import check_objective_models, check_one_model

    models = _models(args)
    check_objective_models(objectives, models)
    check_one_model(args.racing, len(models))
    if not any(isinstance(o, OnModel) for o in objectives):
        return ""
    return f"{', '.join(o.name for o in objectives)} (a Pareto front)"


def _search(args: argparse.Namespace, console: Any) -> int:
    import orjson

    from mutators.groups import mixture_of
    from sammo_core.graph import compile
    from sammo_core.objectives import parse_objectives

    loaded = load_program_from_args(args)
    train, val, test = splits(args, loaded)
    loaded = _written_examples(args, loaded, train, console)
    loaded, objective_spec = _labelled(args, loaded, [train, val])
    objectives = parse_objectives(objective_spec)
    selects_on = _selects_on(args, objectives)  # checked before any stack is opened
    search = _strategy(args, mixture_of(args.operators), objectives)
    mutator = search.mutator if pick_strategy(args.strategy).needs_mutator else None
    priors_line = use_priors(args.priors, mutator, args.strategy)
    models, stacks, proposer, scoring = _model_stacks(args, console, loaded.program, selects_on)
    task = stacks[models[0]]
    console.print(
        f"[bold]{search.__class__.__name__}[/] on {' + '.join(models)}: train {len(train)}, "
        f"val {len(val)}, test {len(test)} rows; program {compile(loaded.program).hash}"
    )
    if args.strategy != "enumerate":
        console.print(what_can_change(search.mutator, loaded.program), highlight=False)
    if priors_line:
        console.print(priors_line, highlight=False)
    started = time.perf_counter()

    async def go() -> SearchResult:
        from rich.live import Live

        # On a terminal one live line; in a log (stderr to a file) a line per candidate.
        with Live(console=console, transient=True, refresh_per_second=4) as live:

            def show(p: Progress) -> None:
                if console.is_terminal:
                    live.update(progress_line(p))
                else:
                    console.print(progress_line(p), highlight=False)

            try:
                return await search.run(
                    loaded.program,
                    train=train,
                    val=val,
                    test=test,
                    runner=scoring,
                    proposer=proposer.runner,
                    out_dir=args.out,
                    resume=args.resume,
                    on_progress=show,
                )
            finally:
                for stack in stacks.values():
                    await stack.aclose()
                if proposer not in stacks.values():
                    await proposer.aclose()

    args.out.mkdir(parents=True, exist_ok=True)
    meta = _meta(args, loaded, objective_spec, (train, val, test))
    write_file(args.out, "run.json", orjson.dumps(meta, option=orjson.OPT_INDENT_2))
    result = run_keeping(go())
    task_name = Path(str(args.program)).stem
    write_file(args.out, PRIORS_FILE, priors_of(result, mutator, task_name).dumps())
    if result.report_reused:
        console.print(
            f"the run in {args.out} had finished ({result.stopped}): its report again, "
            "with no new call"
        )
    print_report(result, time.perf_counter() - started, model=args.model)
    if len(models) > 1:
        print_models_report(result, models)
    _print_requests(task, proposer)
    console.print(f"run written to {args.out} (export with: sammo-core export {args.out})")
    return 0


#: The file in an optimize run folder with what the run learned (see :mod:`search.priors`).
PRIORS_FILE = "priors.json"


def racing_lines(result: SearchResult) -> list[str]:
    """What racing and request reuse saved, for the final report (nothing if neither did).

    >>> from search.candidate import Candidate
    >>> from search.result import SearchResult
    >>> from sammo_core.runners.accounting import Usage
    >>> cands = [Candidate(0, None, "a", {}, rows=8), Candidate(1, None, "b", {}, rows=2,
    ...          eliminated=True), Candidate(2, None, "c", {}, rows=8, same_as=0)]
    >>> result = SearchResult([], cands, cands[0], cands[0], [], {}, Usage(), Usage(), "done",
    ...                       1, 0.0, "BeamSearch", {"racing": "halving"})
    >>> print("\\n".join(racing_lines(result)))
    racing (halving): 1 of 3 candidates stopped early; 10 validation rows scored, of 24 in full
    1 candidate sent the requests of an earlier one and reused its scores (no call)
    """
    lines = []
    raced = [c for c in result.candidates if c.rows is not None]
    if raced:
        full = max(c.rows or 0 for c in raced)
        scored = sum(c.rows or 0 for c in raced if c.same_as is None)
        stopped = sum(c.eliminated for c in raced)
        lines.append(
            f"racing ({result.params.get('racing')}): {stopped} of {len(raced)} candidates "
            f"stopped early; {scored:,} validation rows scored, of {full * len(raced):,} in full"
        )
    same = sum(c.same_as is not None for c in result.candidates)
    if same:
        lines.append(
            f"{same} candidate{'s' if same > 1 else ''} sent the requests of an earlier one and "
            "reused its scores (no call)"
        )
    return lines


def print_report(result: SearchResult, seconds: float, *, model: str | None = None) -> None:
    """The final table: start vs best on validation and test, then best - start on the same
    test rows (paired; McNemar's p for an accuracy), calls, tokens, time."""
    from rich.table import Table

    def fmt(score: Any) -> str:
        if score is None:
            return "-"
        if score.ci_low is None:
            return f"{score.value:,.3f}".rstrip("0").rstrip(".")
        return f"{score.value:.3f} [{score.ci_low:.3f}, {score.ci_high:.3f}]"

    table = Table(
        title=f"{result.strategy}: {len(result.candidates)} candidates, "
        f"{result.steps} steps, stopped on {result.stopped}"
    )
    table.add_column("program")
    for o in result.objectives:
        table.add_column(f"val {o.name}", justify="right")
        table.add_column(f"test {o.name}", justify="right")
    rows = [("start", result.start), ("best", result.best)]
    rows += [(f"pareto {i}", c) for i, c in enumerate(result.front) if c.id != result.best.id]
    for label, cand in rows:
        cells = [f"{label} (#{cand.id})"]
        test = result.test_scores.get(cand.id, {})
        for o in result.objectives:
            cells += [fmt(cand.scores.get(o.name)), fmt(test.get(o.name))]
        table.add_row(*cells)
    console = table_console()
    console.print(table)
    comparison = result.test_comparison
    if comparison is not None:
        console.print(
            f"test {result.objectives[0].name}, best - start on the same rows (paired 95% CI): "
            f"{comparison}"
        )
    u, t = result.usage, result.test_usage
    console.print(
        f"search: {u.calls:,} calls, {u.cache_hits:,} cache hits, {u.total_tokens:,} tokens, "
        f"{cost_text(u.usd, model)}; test report (outside the budget): {t.calls:,} calls, "
        f"{t.cache_hits:,} cache hits; total: {result.total_usage.calls:,} calls; {seconds:.1f} s"
    )
    for line in racing_lines(result):
        console.print(line)
    if result.operators:
        ops = ", ".join(f"{s.operator} {s.wins}/{s.tries}" for s in result.operators)
        console.print(f"operator wins/tries: {ops}")
    for cand in result.lineage()[1:]:
        console.print(f"  #{cand.id} {cand.operator}: {cand.description}")


def print_models_report(result: SearchResult, models: Sequence[str]) -> None:
    """With several models: the start's and the best's score on each model, validation and
    test, on the primary objective (what the combined score hides), and each model's calls."""
    from rich.table import Table

    from sammo_core.objectives import unwrapped
    from search.panel import model_key

    name = unwrapped(result.objectives[0]).name  # of NAME@MODEL, each model's NAME
    on = "the objectives above" if name != result.objectives[0].name else "their combined score"
    table = Table(title=f"{name} on each model (the search selected on {on})")
    table.add_column("program")
    for model in models:
        table.add_column(f"{model} val", justify="right")
        table.add_column(f"{model} test", justify="right")
    for label, cand in (("start", result.start), ("best", result.best)):
        test = result.test_scores.get(cand.id, {})
        cells = [f"{label} (#{cand.id})"]
        for model in models:
            for score in (
                cand.scores.get(model_key(name, model)),
                test.get(model_key(name, model)),
            ):
                cells.append("-" if score is None else _interval(score))
        table.add_row(*cells)
    console = table_console()
    console.print(table)
    spent = ", ".join(f"{m} {u.calls:,} calls" for m, u in result.usage_by_model.items())
    if spent:
        console.print(f"search calls by model: {spent}")


def _interval(score: Any) -> str:
    if score.ci_low is None:
        return f"{score.value:.3f}"
    return f"{score.value:.3f} [{score.ci_low:.3f}, {score.ci_high:.3f}]"


def register_export(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export",
        help="export a run's winner as a prompt file",
        description="Write RUN_DIR's best program (or a Pareto pick) as markdown, a jinja2 "
        "template, program JSON or chat messages, with a manifest.",
    )
    p.add_argument("run_dir", type=Path, help="the --out folder of an optimize run")
    p.add_argument(
        "--format",
        choices=("markdown", "jinja", "json", "messages", "poml"),
        default="json",
        help="markdown (prompt.md, for people), jinja (prompt.jinja), json (program.json, the "
        "complete program; default), messages (messages.json, OpenAI chat messages) or poml "
        "(prompt.poml, POML markup); "
        "program.json is written with every format, so the export can be run",
    )
    p.add_argument(
        "--pick",
        default="best",
        help="'best', 'pareto:N' (the N-th member of the front, 0 = best), or "
        "'limit:OBJECTIVE=VALUE' (best within a limit, e.g. limit:mean_prompt_tokens=200)",
    )
    p.add_argument("--out", type=Path, help="directory for the export (default RUN_DIR/export)")
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from sammo_core.errors import ConfigError
    from sammo_core.export import build_manifest, write_export
    from sammo_core.run_files import check_not_linked, damaged_file, inside, read_json
    from sammo_core.serialization import load

    run_dir: Path = args.run_dir
    result_file = run_dir / "result.json"
    if not run_dir.is_dir():
        raise ConfigError(
            f"RUN_DIR {run_dir} does not exist: pass the --out folder of `sammo-core optimize`"
        )
    if not result_file.is_file():
        raise ConfigError(
            f"{run_dir} holds no result.json: is it an optimize --out folder, and did the run "
            "finish? (continue a stopped run with optimize --resume)"
        )
    with damaged_file(result_file, "an optimize result"):
        result = read_json(result_file, what="optimize result")
        chosen = _choose(result, args.pick, run_dir)
        program_file = inside(run_dir / "programs", f"{chosen['id']}.json", source=result_file)
        if not program_file.is_file():
            program_file = inside(run_dir, "best_program.json", source=result_file)
        program = load(program_file)  # with the soft prompt tensors saved beside it
        prior = chosen.get("label_prior")
        if prior and program.calibration != "none" and not list(program.label_prior):
            # The prior the winner fitted on validation travels with it: no calibration calls.
            import pyglove as pg

            values = [float(prior[str(label)]) for label in program.child.labels]
            program = pg.clone(program, deep=True, override={"label_prior": values})
        scores = dict(chosen.get("test_scores") or chosen["scores"])
        budget_used = dict(result["usage"])
    meta = _run_meta(run_dir)
    with damaged_file(run_dir / "run.json", "an optimize run's settings"):
        fields = meta.get("input_fields")
        if fields is not None and not all(isinstance(f, str) for f in list(fields)):
            raise TypeError(f"input_fields {fields!r} is not a list of names")
        fields = None if fields is None else tuple(fields)
        data_hash = " ".join(f"{k}:{v}" for k, v in dict(meta.get("data_hash") or {}).items())
    if args.out is None:  # inside the run folder: no link there may send the export elsewhere
        check_not_linked(run_dir, "export")
    out = args.out or run_dir / "export"
    # The adapter first: the manifest names it only once it is written.
    adapter = program_adapter(program, out, str(meta.get("model", "unknown")))
    manifest = build_manifest(
        program,
        model=str(meta.get("model", "unknown")),
        scores=scores,
        data_hash=data_hash or "unknown",
        budget_used=budget_used,
        objective=meta.get("objective"),
        input_field=meta.get("input_field"),
        output_field=meta.get("output_field"),
        input_fields=fields,
        adapter=None if adapter is None else ADAPTER_DIR,
        models=meta.get("call_settings"),
    )
    formats = [args.format] if args.format == "json" else [args.format, "json"]
    for fmt in formats:
        prompt_path, manifest_path = write_export(program, out, fmt, manifest)
        print(f"wrote {prompt_path} and {manifest_path}")
    if adapter is not None:
        print(
            f"wrote the soft prompt as a PEFT adapter: {adapter} (load it with "
            f"peft.PeftModel.from_pretrained(base_model, {str(adapter)!r}))"
        )
    print(f"run it with: sammo-core run {out / 'program.json'} --data FILE --model MODEL")
    return 0


def _run_meta(run_dir: Path) -> dict[str, Any]:
    from sammo_core.errors import DataError
    from sammo_core.run_files import read_json

    meta = run_dir / "run.json"
    if not meta.is_file():
        return {}
    data = read_json(meta, what="optimize run's settings file")
    if not isinstance(data, dict):
        raise DataError(f"{meta} is not an optimize run's settings: not a JSON object")
    return data


def _choose(result: dict[str, Any], pick: str, run_dir: Path) -> dict[str, Any]:
    from sammo_core.errors import ConfigError

    if pick == "best":
        return dict(result["best"])
    kind, _, arg = pick.partition(":")
    if kind == "pareto":
        front = result["front"]
        try:
            return dict(front[int(arg)])
        except (ValueError, IndexError) as exc:
            raise ConfigError(
                f"--pick {pick!r}: the front of {run_dir} has {len(front)} members "
                f"(0..{len(front) - 1})"
            ) from exc
    if kind == "limit":
        name, _, value = arg.partition("=")
        directions = {o["name"]: o["direction"] for o in result["objectives"]}
        if name not in directions:
            raise ConfigError(f"--pick {pick!r}: {name!r} is not an objective of this run")
        try:
            limit = float(value)
        except ValueError:
            raise ConfigError(
                f"--pick {pick!r}: {value!r} is not a number; write e.g. --pick limit:{name}=0.8"
            ) from None
        ok = [
            c
            for c in result["front"]
            if (c["scores"][name]["value"] <= limit) == (directions[name] == "minimize")
            or c["scores"][name]["value"] == limit
        ]
        if not ok:
            raise ConfigError(f"--pick {pick!r}: no member of the Pareto front meets it")
        return dict(ok[0])
    raise ConfigError(f"--pick {pick!r}: use best, pareto:N or limit:OBJECTIVE=VALUE")
