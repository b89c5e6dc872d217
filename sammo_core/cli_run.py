"""``sammo-core run``: run a program on a data file and report accuracy, calls, tokens, time.

``--compare OTHER`` runs a second program on the same rows and compares the two row by row
(:mod:`sammo_core.cli_compare`).

Writes ``OUT/results.json`` (scores with intervals, usage, model, program and data hashes, and
``replies``: how many rows failed, got an empty reply, an unparsable one or one outside the
labels) and ``OUT/predictions.jsonl`` (one row per input with the exact prompt sent). Every
output path is checked before the first call. When the run stops early (a row that fails for
good with ``--on-error fail``, a budget, Ctrl-C or SIGTERM), the rows done so far are still
written, with ``"partial": true`` in ``results.json``. One process at a time writes an ``--out``
folder (:func:`~sammo_core.processes.lock_folder`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from sammo_core.cli_compare import COMPARE_HELP
from sammo_core.console import table_console
from sammo_core.objectives import OBJECTIVES
from sammo_core.run_files import make_folder, write_file
from sammo_core.runners.base import DEFAULT_MAX_REPLY_BYTES, MODES
from sammo_core.runners.http_transport import DEFAULT_MAX_BODY_BYTES

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from sammo_core.data import DataTable
    from sammo_core.loading import ProgramFile
    from sammo_core.objectives import Objective, Score
    from sammo_core.runners.accounting import Usage
    from sammo_core.runners.retry import RetryStats

__all__ = [
    "add_program_arguments",
    "add_runner_arguments",
    "base_url_argument",
    "cache_path_argument",
    "check_out_dir",
    "load_program_from_args",
    "positive_int_argument",
    "progress_bar",
    "register",
    "stop_argument",
    "table_console",
    "write_jsonl",
]


def add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, endpoint, cache and limit options shared by every command that calls a model."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        required=True,
        help="'local' for the embedded SmolLM2-135M, 'local:PATH.gguf', 'hf:gemma3' or "
        "'hf:PATH' (in-process transformers: soft prompts, rank classification; the [soft] "
        "extra), or an OpenAI-compatible model name",
    )
    group.add_argument(
        "--base-url",
        type=base_url_argument,
        help="OpenAI-compatible endpoint (default: OPENAI_BASE_URL)",
    )
    group.add_argument(
        "--cache",
        type=cache_path_argument,
        help="persistent cache of completions: a SQLite file (e.g. cache.sqlite) or a "
        "PostgreSQL database that many processes share (postgresql://USER@HOST:PORT/DB; the "
        "[postgres] extra)",
    )
    group.add_argument(
        "--replay",
        action="store_true",
        help="answer only from --cache; a request not in it fails (for offline CI)",
    )
    group.add_argument("--concurrency", type=int, default=32, help="calls in flight (default 32)")
    group.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds one request may take in all, answer read to its end, before it is "
        "retried (default 60)",
    )
    group.add_argument(
        "--max-attempts",
        type=positive_int_argument,
        default=5,
        help="attempts per call before it fails, retrying 429s, 5xx and timeouts (default 5)",
    )
    group.add_argument("--rpm", type=float, help="requests per minute limit")
    group.add_argument("--tpm", type=float, help="tokens per minute limit")
    group.add_argument(
        "--max-reply-bytes",
        type=int,
        default=DEFAULT_MAX_REPLY_BYTES,
        help="cut reply text beyond this many bytes, in results and in the cache "
        f"(default {DEFAULT_MAX_REPLY_BYTES:,}; 0: no cap)",
    )
    group.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="read at most this many bytes of a server's reply body, decoded (a gzip body "
        "counts inflated); a longer one fails its call unread "
        f"(default {DEFAULT_MAX_BODY_BYTES:,}; 0: no cap)",
    )


def base_url_argument(text: str) -> str:
    """``--base-url``: an http(s) URL that parses.

    >>> base_url_argument("http://127.0.0.1:8000/v1")
    'http://127.0.0.1:8000/v1'
    >>> base_url_argument("http://[::1")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: 'http://[::1' is not a valid URL (Invalid IPv6 URL); \
write it like http://127.0.0.1:8000/v1 or http://[::1]:8000/v1
    """
    import urllib.parse

    fix = "write it like http://127.0.0.1:8000/v1 or http://[::1]:8000/v1"
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018  (a bad port raises here)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid URL ({exc}); {fix}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL with a host; {fix}")
    return text


def cache_path_argument(text: str) -> Path | str:
    """``--cache``: a file path (created if missing), never a directory; or a
    ``postgresql://`` URL (kept as text, checked to parse; its password never shown).

    >>> cache_path_argument(".")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: '.' is a directory; name a file in it, e.g. --cache cache.sqlite
    >>> cache_path_argument("postgresql://sammo@db:5432/cache")
    'postgresql://sammo@db:5432/cache'
    >>> cache_path_argument("postgresql://sammo:s3cret@db:port/cache")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: 'postgresql://***@db:port/cache' is not a valid URL (Port could \
not be cast to integer value as 'port'); write it postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE
    """
    from sammo_core.runners.cache_store import is_postgres_url, mask_url

    if is_postgres_url(text):
        import urllib.parse

        fix = "write it postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE"
        try:
            urllib.parse.urlsplit(text).port  # noqa: B018  (a bad port raises here)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(
                f"{mask_url(text)!r} is not a valid URL ({exc}); {fix}"
            ) from None
        return text
    path = Path(text)
    if path.is_dir():
        example = path / "cache.sqlite"
        raise argparse.ArgumentTypeError(
            f"{text!r} is a directory; name a file in it, e.g. --cache {example}"
        )
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise argparse.ArgumentTypeError(
                f"{text!r} cannot be created: {str(parent)!r} is a file, not a directory"
            )
    return path


def positive_int_argument(text: str) -> int:
    """A whole number >= 1, for counts such as ``--max-attempts``.

    >>> positive_int_argument("3")
    3
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; e.g. 3") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


#: Seeds are stored in run files as JSON integers, so they fit in a signed 64-bit integer.
MAX_SEED = 2**63 - 1


def seed_argument(text: str) -> int:
    """``--seed``: a whole number that fits in 64 bits (``-2**63`` to :data:`MAX_SEED`).

    >>> seed_argument("7")
    7
    >>> seed_argument(str(2**64))
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: '18446744073709551616' is too large for a seed: use a whole \
number from -2**63 to 2**63 - 1 (9223372036854775807)
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; e.g. 0") from None
    if not -MAX_SEED - 1 <= value <= MAX_SEED:
        size = "too large" if value > 0 else "too small"
        raise argparse.ArgumentTypeError(
            f"{text!r} is {size} for a seed: use a whole number from -2**63 to 2**63 - 1 "
            f"({MAX_SEED})"
        )
    return value


def add_program_arguments(parser: argparse.ArgumentParser) -> None:
    """PROGRAM and how to read the data's fields, shared by the commands that run programs."""
    parser.add_argument(
        "program",
        type=Path,
        help="program: a .py file defining `program`, a saved program .json, or a prompt "
        "file (.md, .txt, .xml, .j2) with {{ input }} where the input goes",
    )
    parser.add_argument(
        "--append-input",
        action="store_true",
        help="for a prompt file with no {{ input }}: add the input as a last section 'Input' "
        "(without this flag such a file is an error)",
    )
    parser.add_argument(
        "--examples",
        type=Path,
        help="a data file of in-context examples for a .py program's make_program(examples) "
        "(default: none for run; the training split for optimize)",
    )
    parser.add_argument("--input-field", help="field holding the input (default: input)")
    parser.add_argument("--output-field", help="field holding the gold output (default: output)")
    parser.add_argument(
        "--mode",
        choices=MODES,
        help="how the model is prompted, on every call of the program (nested ones too): "
        "'chat' sends messages through the model's chat template (instruction models); "
        "'completion' sends the rendered text as it is, to be continued (base models such "
        "as local:gemma3) (default: as the program is written; a prompt file: chat)",
    )
    parser.add_argument(
        "--stop",
        action="append",
        type=stop_argument,
        metavar="TEXT",
        help="end the answer before TEXT; repeat for several. Python escapes are read, so "
        "write a newline as '\\n' (quoted, e.g. --stop '\\n' --stop 'Input:'). Replaces the "
        "stops of the program's root call; nested calls keep theirs (default: as written)",
    )
    parser.add_argument(
        "--labels",
        metavar="A,B,...",
        help="the closed label set, comma-separated, or 'auto' for the distinct gold outputs: "
        "the program's call lists them, so a model that can score labels (local, "
        "local:gemma3, hf:..., a completions server with log-probabilities) answers with the "
        "most likely one (rank classification) instead of generating; the default objective "
        "becomes label_accuracy over them (default: as the program is written)",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="divide out the label prior the model shows on content-free inputs (N/A, '', "
        "[MASK]) before choosing a label; needs --labels (or labels in the program) and a "
        "model that scores them",
    )


def stop_argument(text: str) -> str:
    r"""``--stop``: a non-empty text, with Python escapes such as ``\n`` and ``\t`` read.

    >>> stop_argument(r"\n\nInput:")
    '\n\nInput:'
    >>> stop_argument("Réponse")
    'Réponse'
    >>> stop_argument("")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: --stop '' is empty; pass the text that ends the answer, e.g. '\n'
    """
    fix = "pass the text that ends the answer, e.g. '\\n'"
    try:
        # Non-Latin-1 characters pass through as \uXXXX escapes, so only the user's escapes change.
        value = text.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"--stop {text!r} has a bad escape ({exc.reason}); {fix} (a backslash itself: '\\\\')"
        ) from None
    if not value:
        raise argparse.ArgumentTypeError(f"--stop {text!r} is empty; {fix}")
    return value


def labelled_program(
    args: argparse.Namespace, loaded: ProgramFile, tables: list[Any]
) -> tuple[ProgramFile, str | None]:
    """``loaded`` with ``--labels`` (read from ``tables`` for ``auto``) and ``--calibrate``
    applied, and the objective spec the labels imply (``label_accuracy:...``; ``None`` without
    labels)."""
    from sammo_core.loading import resolve_labels, with_labels

    spec, calibrate = getattr(args, "labels", None), bool(getattr(args, "calibrate", False))
    labels = resolve_labels(spec, tables) if spec else None
    if labels is None and not loaded.program.child.labels:
        labels = _objective_labels_for_base_model(args, loaded, tables)
    if labels is None and not calibrate:
        own = [str(x) for x in loaded.program.child.labels]
        return loaded, f"label_accuracy:{','.join(own)}" if own else None
    program = with_labels(loaded.program, labels, calibrate=calibrate)
    chosen = [str(x) for x in program.child.labels]
    return dataclasses.replace(loaded, program=program), f"label_accuracy:{','.join(chosen)}"


def _objective_labels_for_base_model(
    args: argparse.Namespace, loaded: ProgramFile, tables: list[Any]
) -> list[str] | None:
    """On a model known to be a base model, the labels of a ``label_accuracy:A,B`` objective
    (``--objective`` or the program file's), spelled as the gold outputs of ``tables`` spell
    them (the model is shown and scored those), so answers are scored by label likelihood by
    default (said on stderr); ``None`` otherwise."""
    from collections import Counter

    from sammo_core.objectives import LabelAccuracy, parse_objectives
    from sammo_core.runners.factory import is_base_model

    model = getattr(args, "model", None) or ""
    spec = getattr(args, "objective", None) or loaded.objective
    if not is_base_model(model) or not spec:
        return None
    found = next((o for o in parse_objectives(spec) if isinstance(o, LabelAccuracy)), None)
    if found is None or len(found.labels) < 2:
        return None
    spellings = Counter(str(o) for t in tables for o in t.outputs if o is not None)
    labels = []
    for label in found.labels:
        key = found.label_key(label)
        same = [(n, o) for o, n in spellings.items() if found.label_key(o) == key]
        labels.append(max(same)[1] if same else label)
    print(
        f"note: {model} is a base model: scoring the labels {labels} of the objective by "
        "likelihood (rank classification) instead of generating; --labels to name others",
        file=sys.stderr,
    )
    return labels


def _base_model_defaults(
    args: argparse.Namespace,
    loaded: ProgramFile,
    mode: str | None,
    stop: list[str] | None,
    *,
    say: bool = True,
) -> tuple[str | None, list[str] | None]:
    """``--mode``/``--stop`` as given, or, for a model known to be a base model (say
    ``local:gemma3``) and a program written for chat, completion mode and a newline stop
    (unless the program has stops): a base model has no chat template and writes on past
    its answer. Says so on stderr."""
    from sammo_core.runners.factory import is_base_model

    model = getattr(args, "model", None) or ""
    call = loaded.program.child
    if mode is not None or not is_base_model(model) or call.mode == "completion":
        return mode, stop
    if stop is None and not list(call.stop):
        stop = ["\n"]
    shown = ", ".join(repr(s) for s in (stop if stop is not None else call.stop))
    if say:
        print(
            f"note: {model} is a base model: prompting it in completion mode (the rendered "
            f"text as it is, no chat template) with stop {shown}; --mode chat to override",
            file=sys.stderr,
        )
    return "completion", stop


def load_program_from_args(
    args: argparse.Namespace, built: ProgramFile | None = None
) -> ProgramFile:
    """PROGRAM as loaded (or ``built``, a program made again from other examples), with
    ``--mode`` and ``--stop`` applied (on a copy) when given.

    The program that runs is the one saved and exported, so its mode and stops travel with it.
    """
    from sammo_core.loading import load_program, with_call_options

    loaded = built
    if loaded is None:
        examples = None
        if getattr(args, "examples", None) is not None:
            from sammo_core.loading import load_data

            examples = load_data(args.examples)
        loaded = load_program(args.program, examples, append_input=args.append_input)
    mode, stop = getattr(args, "mode", None), getattr(args, "stop", None)
    mode, stop = _base_model_defaults(args, loaded, mode, stop, say=built is None)
    if mode is not None or stop is not None:
        program = with_call_options(loaded.program, mode=mode, stop=stop)
        loaded = dataclasses.replace(loaded, program=program)
    if built is None:
        from sammo_core.completion import answer_slot_problem

        problem = answer_slot_problem(loaded.program)
        if problem is not None:
            print(
                f"warning: in completion mode the model continues the prompt, which should end "
                f"with its answer cue: {problem}",
                file=sys.stderr,
            )
    return loaded


def progress_bar(console: Console) -> Progress:
    """The progress bar every long command shows (on stderr, gone when done)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run`` subcommand."""
    parser = subparsers.add_parser(
        "run",
        help="run a program on a data file",
        description="Run PROGRAM on every row of a data file and report its score. PROGRAM "
        "is a .py file defining `program`, a saved program .json (e.g. from export), or a "
        "prompt file you already have (.md, .txt, .xml, .j2, .jinja) with {{ input }} where "
        "the input goes.",
    )
    add_program_arguments(parser)
    parser.add_argument("--data", type=Path, required=True, help="data file: .jsonl, .json, .csv")
    parser.add_argument("--split", help="named split inside a JSON data file")
    parser.add_argument("--limit", type=int, help="use only the first N rows")
    parser.add_argument(
        "--objective",
        help=f"accuracy (default), or: {', '.join(OBJECTIVES)}, label_accuracy:LABEL,LABEL,...",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="directory for results.json and predictions.jsonl (created if missing; written "
        "even when the run stops early, marked partial)",
    )
    parser.add_argument(
        "--on-error",
        choices=("fail", "skip"),
        default="fail",
        help="a row whose call fails after all attempts: 'fail' stops the run (rows done so "
        "far are written); 'skip' records it as failed, scores it wrong and goes on "
        "(default: fail)",
    )
    parser.add_argument("--compare", type=Path, metavar="OTHER", help=COMPARE_HELP)
    add_runner_arguments(parser)
    parser.set_defaults(func=_run_command)


def check_out_dir(out: Path, files: tuple[str, ...]) -> None:
    """Make ``out`` (a directory) and fail now, before any call, if ``files`` cannot go in it.

    >>> import tempfile
    >>> check_out_dir(Path(tempfile.mkstemp()[1]), ("results.json",))
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: --out '...' is a file; pass a directory (created if missing)
    """
    from sammo_core.errors import ConfigError

    make_folder(out, "--out")
    for name in files:
        if (out / name).is_dir():
            raise ConfigError(
                f"--out {str(out)!r} holds a directory named {name!r}, where the file goes; "
                "remove it or pass another --out"
            )
    if not os.access(out, os.W_OK):
        raise ConfigError(f"--out {str(out)!r} is not writable; pass a writable directory")


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Write records as JSON lines, atomically (a crash leaves the old file or the new one)."""
    lines = b"".join(orjson.dumps(record, default=str) + b"\n" for record in records)
    write_file(path.parent, path.name, lines)  # never through a link planted at ``path``


_OUT_FILES = ("results.json", "predictions.jsonl", "program.json")


def _load_inputs(args: argparse.Namespace) -> tuple[ProgramFile, DataTable, Objective]:
    """Program, data and objective, each checked before any runner is built."""
    from sammo_core.errors import ConfigError
    from sammo_core.loading import load_data
    from sammo_core.objectives import get_objective

    loaded = load_program_from_args(args)
    data = load_data(
        args.data,
        split=args.split,
        input_field=args.input_field or loaded.input_field,
        output_field=args.output_field or loaded.output_field,
        input_fields=loaded.input_fields,
    )
    if args.limit is not None:
        if args.limit < 1:
            raise ConfigError(f"--limit must be >= 1; got {args.limit}")
        data = data[: args.limit]
    loaded, implied = labelled_program(args, loaded, [data])
    spec = args.objective or loaded.objective or implied or "accuracy"
    return loaded, data, get_objective(spec)


def _run_command(args: argparse.Namespace) -> int:
    if args.compare is not None:
        from sammo_core.cli_compare import run_compare

        return run_compare(args)
    from sammo_core.graph import compile
    from sammo_core.processes import lock_folder

    loaded, data, objective = _load_inputs(args)
    graph = compile(loaded.program)
    if args.out is None:
        return _run_program(args, loaded, data, objective, graph)
    check_out_dir(args.out, _OUT_FILES)
    with lock_folder(args.out):  # one process writes an --out folder at a time
        return _run_program(args, loaded, data, objective, graph)


def _run_program(
    args: argparse.Namespace, loaded: ProgramFile, data: DataTable, objective: Objective, graph: Any
) -> int:
    from sammo_core.processes import interruption
    from sammo_core.results import ResultRow
    from sammo_core.runners.factory import build_runner_from_args

    stack = build_runner_from_args(args)

    from rich.console import Console

    console = Console(stderr=True, soft_wrap=True)  # a log keeps each line whole
    start = time.perf_counter()
    done: list[ResultRow] = []
    priors: list[dict[str, float] | None] = []

    async def go() -> None:
        try:
            with progress_bar(console) as progress:
                task = progress.add_task(f"running on {args.model}", total=len(data))
                table = await graph.run(
                    data,
                    stack.runner,
                    max_concurrency=args.concurrency,
                    on_progress=lambda n, _total: progress.update(task, completed=n),
                    on_rows=done.extend,
                    on_error=args.on_error,
                )
                priors.append(table.label_prior)
        finally:
            await stack.aclose()

    def finish(stopped: str | None) -> Path | None:
        report = _Report(
            args=args,
            program=loaded.program,
            program_hash=graph.hash,
            data=data,
            objective=objective,
            rows=done,
            stopped=stopped,
            label_prior=priors[0] if priors else None,
        )
        elapsed = time.perf_counter() - start
        report.summarize(console, stack.usage, elapsed, requests=stack.retry_stats)
        if args.out is None:
            return None
        report.write(stack.usage, elapsed, requests=stack.retry_stats)
        out: Path = args.out
        return out

    try:
        asyncio.run(go())
    except KeyboardInterrupt:
        kept = finish(f"interrupted ({interruption()})")
        where = (
            f"wrote them, marked partial, to {kept / 'results.json'} and "
            f"{kept / 'predictions.jsonl'}"
            if kept is not None
            else "nothing was written (pass --out DIR to keep results)"
        )
        console.print(
            f"interrupted ({interruption()}): {len(done)} of {len(data)} rows were done; {where}"
        )
        return 130
    except Exception as exc:
        if args.out is not None:
            finish(f"{type(exc).__name__}: {exc}")
            console.print(
                f"the run stopped after {len(done)} of {len(data)} rows; wrote them, marked "
                f"partial, to {args.out / 'results.json'} and {args.out / 'predictions.jsonl'}"
            )
        raise
    finish(None)
    if args.out is not None:
        console.print(f"wrote {args.out / 'results.json'} and {args.out / 'predictions.jsonl'}")
    return 0


class _Report:
    """What a run produced, complete or not: its scores, reply counts and output files."""

    def __init__(
        self,
        *,
        args: argparse.Namespace,
        program: Any,
        program_hash: str,
        data: Any,
        objective: Any,
        rows: list[Any],
        stopped: str | None,
        label_prior: dict[str, float] | None = None,
    ) -> None:
        from sammo_core.objectives import LabelLogLikelihood, evaluate, reply_counts
        from sammo_core.results import ResultTable

        self.args, self.program, self.program_hash, self.data = args, program, program_hash, data
        self.results = ResultTable.from_rows(rows, label_prior)
        self.stopped = stopped
        objectives = [objective]
        if self.results.scored and objective.name != "label_loglik":
            objectives.append(LabelLogLikelihood())  # the smooth score beside the chosen one
        self.scores: dict[str, Score] = (
            evaluate(self.results, objectives) if len(self.results) else {}
        )
        self.replies = reply_counts(self.results, [objective])
        self.scoring = describe_scoring(program, self.results)
        self.majority = majority_rate(self.results, objective)

    def summarize(
        self, console: Console, usage: Usage, elapsed: float, *, requests: RetryStats | None
    ) -> None:
        title = f"{len(self.results)} rows"
        if self.stopped is not None:
            title = f"{len(self.results)} of {len(self.data)} rows (partial: {self.stopped})"
        _print_summary(
            console,
            scores=self.scores,
            usage=usage,
            elapsed=elapsed,
            title=title,
            replies=self.replies,
            requests=requests,
            facts=self.facts(),
            cut_off=self.results.cut_off,
            tokens_estimated=self.results.tokens_estimated,
        )

    def facts(self) -> dict[str, str]:
        """How the answers were read, and what a constant answer would score."""
        facts = {"scoring": self.scoring}
        if self.majority is not None:
            label, rate = self.majority
            facts["majority-label rate"] = f"{rate:.3f} (always '{label}')"
        prior = self.results.label_prior
        if prior:
            facts["calibration prior"] = ", ".join(f"{k} {v:.3f}" for k, v in prior.items())
        return facts

    def write(self, usage: Usage, elapsed: float, *, requests: RetryStats | None) -> None:
        from sammo_core import __version__
        from sammo_core.serialization import dumps

        out: Path = self.args.out
        out.mkdir(parents=True, exist_ok=True)
        summary = {
            "program": str(self.args.program),
            "program_hash": self.program_hash,
            "data": str(self.args.data),
            "data_hash": self.data.content_hash(),
            "rows": len(self.results),
            "rows_in_data": len(self.data),
            "partial": self.stopped is not None,
            "stopped": self.stopped,
            "model": self.args.model,
            "scores": {name: s.to_dict() for name, s in self.scores.items()},
            "scoring": self.scoring,
            "majority_rate": None if self.majority is None else self.majority[1],
            "majority_label": None if self.majority is None else self.majority[0],
            "label_prior": self.results.label_prior,
            "replies": self.replies,
            # Replies the model cut off at max_tokens: their answers may be incomplete.
            "cut_off": self.results.cut_off,
            # What the program costs per input (cache or not), apart from what this run spent;
            # the rows whose token counts are estimates (the server reported none) are counted.
            "cost_per_input": self.results.cost_per_input().to_dict(),
            "tokens_estimated": self.results.tokens_estimated,
            "usage": usage.to_dict(),
            "requests": None if requests is None else requests.to_dict(),
            "seconds": round(elapsed, 3),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "sammo_core_version": __version__,
        }
        write_file(out, "program.json", dumps(self.program))
        write_jsonl(out / "predictions.jsonl", self.results.to_records())
        write_file(
            out, "results.json", orjson.dumps(summary, option=orjson.OPT_INDENT_2, default=str)
        )


def describe_scoring(program: Any, results: Any) -> str:
    """How a run's answers were read: scored labels (with calibration or not), or generated.

    >>> from sammo_core import GenerateText, InputData, MetaPrompt, Output
    >>> from sammo_core.results import ResultTable
    >>> describe_scoring(Output(GenerateText(MetaPrompt([InputData()]))), ResultTable(()))
    'generated text'
    """
    labels = [str(x) for x in program.child.labels]
    if not labels:
        return "generated text"
    if not results.scored:
        return f"generated text (labels {labels} listed; the model did not score them)"
    how = f"label likelihood (rank classification over {labels})"
    if program.calibration != "none":
        how += f", calibrated ({program.calibration})"
    return how


def majority_rate(results: Any, objective: Any) -> tuple[str, float] | None:
    """The most frequent gold label of the rows and the label accuracy of always answering it
    (for a label objective; else ``None``): the bar a classifier must clear.

    >>> from sammo_core.objectives import LabelAccuracy
    >>> from sammo_core.results import ResultRow, ResultTable
    >>> rows = [ResultRow(i, "q", g, "p", "", None) for i, g in enumerate(["no", "yes", "no"])]
    >>> majority_rate(ResultTable(tuple(rows)), LabelAccuracy(("yes", "no")))
    ('no', 0.6666666666666666)
    """
    from sammo_core.objectives import LabelAccuracy

    if not isinstance(objective, LabelAccuracy) or not len(results):
        return None
    return objective.majority([r.output for r in results])


_REPLY_ROWS = {
    "failed": "failed rows (scored wrong)",
    "empty": "empty replies",
    "unparsable": "unparsable replies",
    "off_label": "off-label replies",
}


def _print_summary(
    console: Console,
    *,
    scores: dict[str, Score],
    usage: Usage,
    elapsed: float,
    title: str,
    replies: dict[str, int | None],
    requests: RetryStats | None = None,
    facts: dict[str, str] | None = None,
    cut_off: int = 0,
    tokens_estimated: int = 0,
) -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for score in scores.values():
        interval = f" [{score.ci_low:.3f}, {score.ci_high:.3f}]" if score.ci_low is not None else ""
        table.add_row(score.name, f"{score.value:.3f}{interval}")
    for name, value in (facts or {}).items():
        table.add_row(name, value)
    for kind, count in replies.items():
        if count is not None:  # off_label only with a label objective
            table.add_row(_REPLY_ROWS[kind], f"{count:,}")
    if cut_off:  # answers that may be incomplete: raise max_tokens
        table.add_row("cut-off replies (max_tokens)", f"{cut_off:,}")
    if tokens_estimated:  # costs and token budgets rest on an estimate for these rows
        table.add_row("rows with estimated tokens", f"{tokens_estimated:,}")
    table.add_row("calls", f"{usage.calls:,}")
    if requests is not None and requests.attempts:
        # What the calls cost on the wire: every attempt, the retries by cause, the waits.
        causes = ", ".join(f"{c} {n}" for c, n in requests.retries_by_cause.items() if n)
        table.add_row("requests sent", f"{requests.attempts:,}")
        table.add_row("retries", f"{requests.retries:,}" + (f" ({causes})" if causes else ""))
        table.add_row("retry wait", f"{requests.wait_seconds:.1f} s")
    table.add_row("cache hits", f"{usage.cache_hits:,}")
    table.add_row("prompt tokens", f"{usage.prompt_tokens:,}")
    table.add_row("completion tokens", f"{usage.completion_tokens:,}")
    if usage.estimated_calls:  # the server's counts were missing or impossible
        table.add_row("calls with estimated tokens", f"{usage.estimated_calls:,}")
    if usage.saved_tokens:
        table.add_row("tokens saved by cache", f"{usage.saved_tokens:,}")
    if usage.usd:
        table.add_row("est. cost", f"${usage.usd:.4f}")
    table.add_row("time", f"{elapsed:.1f} s")
    table_console().print(table)  # the table goes to stdout; progress went to stderr
    del console
