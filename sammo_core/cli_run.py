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
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sammo_core.cli_compare import COMPARE_HELP
from sammo_core.console import table_console
from sammo_core.objectives import OBJECTIVES
from sammo_core.run_inputs import (
    OUT_FILES,
    check_out_dir,
    labelled_program,
    load_inputs,
    load_program_from_args,
    progress_bar,
)
from sammo_core.run_report import (
    RunReport,
    write_jsonl,
)
from sammo_core.runners.base import DEFAULT_MAX_REPLY_BYTES, MODES
from sammo_core.runners.http_transport import DEFAULT_MAX_BODY_BYTES

if TYPE_CHECKING:
    from sammo_core.data import DataTable
    from sammo_core.loading import ProgramFile
    from sammo_core.objectives import Objective

__all__ = [
    "ModelsAction",
    "add_program_arguments",
    "add_runner_arguments",
    "base_url_argument",
    "cache_path_argument",
    "check_out_dir",
    "labelled_program",
    "load_program_from_args",
    "positive_int_argument",
    "progress_bar",
    "register",
    "stop_argument",
    "table_console",
    "write_jsonl",
]


class ModelsAction(argparse.Action):
    """``--model``, repeatable: ``args.model`` is the first one given, ``args.models`` all of
    them in order (commands that take one refuse more: see
    :func:`sammo_core.runners.factory.build_runner_from_args`).

    >>> parser = argparse.ArgumentParser()
    >>> _ = parser.add_argument("--model", action=ModelsAction)
    >>> args = parser.parse_args(["--model", "local", "--model", "local:gemma3"])
    >>> args.model, args.models
    ('local', ['local', 'local:gemma3'])
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        models = list(getattr(namespace, "models", None) or [])
        if values in models:
            parser.error(f"--model {values} is given twice; name each model once")
        models.append(values)
        namespace.models = models
        setattr(namespace, self.dest, models[0])


def add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, endpoint, cache and limit options shared by every command that calls a model."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        required=True,
        action=ModelsAction,
        help="'local' for the embedded SmolLM2-135M, 'local:PATH.gguf', 'hf:gemma3' or "
        "'hf:PATH' (in-process transformers: soft prompts, rank classification; the [soft] "
        "extra), or an OpenAI-compatible model name; optimize takes it more than once (a "
        "program scored on several models)",
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


def _run_command(args: argparse.Namespace) -> int:
    if args.compare is not None:
        from sammo_core.cli_compare import run_compare

        return run_compare(args)
    from sammo_core.graph import compile
    from sammo_core.processes import lock_folder

    loaded, data, objective = load_inputs(args)
    graph = compile(loaded.program)
    if args.out is None:
        return _run_program(args, loaded, data, objective, graph)
    check_out_dir(args.out, OUT_FILES)
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
        report = RunReport(
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
