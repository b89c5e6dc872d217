"""``sammo-core run``: run a program on a data file and report accuracy, calls, tokens, time.

Writes ``OUT/results.json`` (scores with intervals, usage, model, program and data hashes) and
``OUT/predictions.jsonl`` (one row per input with the exact prompt sent).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from sammo_core.objectives import Score
    from sammo_core.results import ResultTable
    from sammo_core.runners.accounting import Usage

__all__ = [
    "add_program_arguments",
    "add_runner_arguments",
    "progress_bar",
    "register",
    "table_console",
    "write_jsonl",
]


def add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, endpoint, cache and limit options shared by every command that calls a model."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        required=True,
        help="'local' for the embedded SmolLM2-135M, 'local:PATH.gguf', or an "
        "OpenAI-compatible model name",
    )
    group.add_argument("--base-url", help="OpenAI-compatible endpoint (default: OPENAI_BASE_URL)")
    group.add_argument(
        "--cache", type=Path, help="persistent SQLite cache of completions (e.g. cache.sqlite)"
    )
    group.add_argument(
        "--replay",
        action="store_true",
        help="answer only from --cache; a request not in it fails (for offline CI)",
    )
    group.add_argument("--concurrency", type=int, default=32, help="calls in flight (default 32)")
    group.add_argument(
        "--timeout", type=float, default=60.0, help="seconds before a call is retried (default 60)"
    )
    group.add_argument("--rpm", type=float, help="requests per minute limit")
    group.add_argument("--tpm", type=float, help="tokens per minute limit")


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
    parser.add_argument("--input-field", help="field holding the input (default: input)")
    parser.add_argument("--output-field", help="field holding the gold output (default: output)")


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


def table_console() -> Console:
    """The console for tables on stdout: the terminal's width, or unlimited when piped.

    Piped to a file or another program, rich would cut tables at 80 columns ("label_accura...");
    there every table is printed whole.
    """
    import sys

    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 10_000)


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
    parser.add_argument("--objective", help="accuracy (default), f1, label_accuracy:yes,no, ... ")
    parser.add_argument("--out", type=Path, help="directory for results.json and predictions.jsonl")
    add_runner_arguments(parser)
    parser.set_defaults(func=_run_command)


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Write records as JSON lines, atomically (a crash leaves the old file or the new one)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("wb") as f:
        for record in records:
            f.write(orjson.dumps(record, default=str) + b"\n")
    tmp.replace(path)


def _run_command(args: argparse.Namespace) -> int:
    from sammo_core.errors import ConfigError
    from sammo_core.graph import compile
    from sammo_core.loading import load_data, load_program
    from sammo_core.objectives import evaluate, get_objective
    from sammo_core.runners.factory import build_runner

    loaded = load_program(args.program, append_input=args.append_input)
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
    objective = get_objective(args.objective or loaded.objective or "accuracy")
    graph = compile(loaded.program)
    stack = build_runner(
        args.model,
        base_url=args.base_url,
        cache=args.cache,
        cache_mode="replay" if args.replay else "readwrite",
        max_concurrency=args.concurrency,
        requests_per_minute=args.rpm,
        tokens_per_minute=args.tpm,
        timeout=args.timeout,
    )

    from rich.console import Console

    console = Console(stderr=True)
    start = time.perf_counter()

    async def go() -> ResultTable:
        try:
            with progress_bar(console) as progress:
                task = progress.add_task(f"running on {args.model}", total=len(data))
                return await graph.run(
                    data,
                    stack.runner,
                    max_concurrency=args.concurrency,
                    on_progress=lambda done, _total: progress.update(task, completed=done),
                )
        finally:
            await stack.aclose()

    results = asyncio.run(go())
    elapsed = time.perf_counter() - start
    scores = evaluate(results, [objective])
    usage = stack.usage
    _print_summary(console, scores, usage, elapsed, len(results))
    if args.out is not None:
        _write_outputs(
            args,
            program=loaded.program,
            program_hash=graph.hash,
            data=data,
            results=results,
            scores=scores,
            usage=usage,
            elapsed=elapsed,
        )
        console.print(f"wrote {args.out / 'results.json'} and {args.out / 'predictions.jsonl'}")
    return 0


def _print_summary(
    console: Any, scores: dict[str, Score], usage: Usage, elapsed: float, rows: int
) -> None:
    from rich.table import Table

    table = Table(title=f"{rows} rows")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for score in scores.values():
        interval = f" [{score.ci_low:.3f}, {score.ci_high:.3f}]" if score.ci_low is not None else ""
        table.add_row(score.name, f"{score.value:.3f}{interval}")
    table.add_row("calls", f"{usage.calls:,}")
    table.add_row("cache hits", f"{usage.cache_hits:,}")
    table.add_row("prompt tokens", f"{usage.prompt_tokens:,}")
    table.add_row("completion tokens", f"{usage.completion_tokens:,}")
    if usage.saved_tokens:
        table.add_row("tokens saved by cache", f"{usage.saved_tokens:,}")
    if usage.usd:
        table.add_row("est. cost", f"${usage.usd:.4f}")
    table.add_row("time", f"{elapsed:.1f} s")
    table_console().print(table)  # the table goes to stdout; progress went to stderr
    del console


def _write_outputs(
    args: argparse.Namespace,
    *,
    program: Any,
    program_hash: str,
    data: Any,
    results: ResultTable,
    scores: dict[str, Score],
    usage: Usage,
    elapsed: float,
) -> None:
    from sammo_core import __version__
    from sammo_core.serialization import dumps

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "program": str(args.program),
        "program_hash": program_hash,
        "data": str(args.data),
        "data_hash": data.content_hash(),
        "rows": len(results),
        "model": args.model,
        "scores": {name: s.to_dict() for name, s in scores.items()},
        "usage": usage.to_dict(),
        "seconds": round(elapsed, 3),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "sammo_core_version": __version__,
    }
    (out / "program.json").write_text(dumps(program))
    tmp = out / "results.json.tmp"
    tmp.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2, default=str))
    tmp.replace(out / "results.json")
    write_jsonl(out / "predictions.jsonl", results.to_records())
