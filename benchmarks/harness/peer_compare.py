"""sammo-core beside SAMMO 0.3.3 and DSPy 3.4 on a base model: one command, one table.

All three systems search few-shot prompts for the same BIG-bench tasks (the SAMMO published
splits of :mod:`benchmarks.datasets`), on the same model (Gemma 3 270M base, ``local:gemma3``'s
GGUF), through the same llama-cpp-python OpenAI-compatible server, in completion mode with the
same stop sequences, with an equal budget of candidate programs scored on the same validation
rows. Each winner then answers the same test rows, and sammo-core's own objective
(:class:`~sammo_core.objectives.LabelAccuracy`, 95% Wilson interval) scores all three. On
those same rows the table compares, row by row (:func:`~sammo_core.stats.compare_paired`:
paired bootstrap interval, rows better and worse, exact McNemar p), each system's winner with
its start, and sammo-core's winner with each other system's.

* **sammo-core**: ``sammo-core bench run base-model`` (beam search over structure, examples and
  format operators), in this process, against the server (:class:`OpenAIRunner`, completion
  mode, its ``--base-url``).
* **SAMMO 0.3.3**: :mod:`benchmarks.peers._peer_sammo` in its own virtualenv: its ``BeamSearch``
  (4 wide, 6 deep, 4 children per parent, ``max_evals`` = the budget) over which train rows it
  shows (1, 2, 4 or 8, three draws each; none at the start), its section formats, and dropping
  or repeating the task section; its data format stays plain (see that module for why).
* **DSPy 3.4**: :mod:`benchmarks.peers._peer_dspy` in its own virtualenv:
  ``BootstrapFewShotWithRandomSearch`` with ``max_bootstrapped_demos=0`` (no teacher calls),
  i.e. random search over sets of up to 8 labeled demos, its 3 baselines included in the budget.

The peers live in virtualenvs under ``~/.cache/sammo-core/peers`` (``--peers-dir``); ``--setup``
creates any that is missing from the package registry (``sammo==0.3.3``, ``dspy==3.4.0``, and a
``server`` one with ``llama-cpp-python[server]`` unless this interpreter can serve already,
e.g. after ``pip install -e ".[compare]"``). A peer whose virtualenv is absent gets a row
saying so. Every system sends at most ``--concurrency`` requests at once; each counts its own
requests (the llama.cpp server keeps no count)::

    python -m benchmarks.harness.peer_compare --setup --out runs/peers
    python -m benchmarks.harness.peer_compare --tasks implicatures --val-rows 4 --test-rows 4 \\
        --budget 3 --out runs/peers-tiny

``--base-url URL --model NAME`` uses a server that is already running instead of starting one.
It writes ``OUT/peers.md`` (the table, then per task each system's winning prompt and its
diff from the start) and ``OUT/peers.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from benchmarks.harness.peer_env import (
    MODEL_ALIAS,
    PEERS,
    SERVER_MODULES,
    SERVER_REQUIREMENT,
    ModelServer,
    default_peers_dir,
    free_port,
    llama_server_command,
    peer_python,
    peer_unavailable,
    setup_peers,
)
from benchmarks.harness.side_script import run_side, table_pairs
from benchmarks.report import fence, prompt_diff
from sammo_core.errors import ConfigError
from sammo_core.stats import PairedComparison, format_p

__all__ = [
    "DEFAULT_TASKS",
    "Settings",
    "SystemResult",
    "build_parser",
    "main",
    "paired",
    "peer_job",
    "peer_result",
    "render_report",
    "render_table",
    "run_ours",
    "run_peer",
    "score_predictions",
]

DEFAULT_TASKS = ("implicatures", "metaphor_boolean", "sports_understanding")
RESULT_PREFIX = "PEER_RESULT "
#: How many train rows the peers may show at most (ours: ChangeExampleCount's largest choice).
MAX_EXAMPLES = 8
#: ``sammo-core-scored`` is sammo-core reading answers by label likelihood (the peers generate,
#: and so does the ``sammo-core`` row: the like-for-like comparison).
SYSTEM_NAMES = ("sammo-core", "sammo-core-scored", "sammo", "dspy")
OURS = ("sammo-core", "sammo-core-scored")
#: The rows of a comparison unless ``--systems`` says otherwise (the scored row is opt-in).
DEFAULT_SYSTEMS = ("sammo-core", "sammo", "dspy")
#: Seconds a scored request may take at the server (see :func:`run_ours`).
SCORED_TIMEOUT = 900


# -- results -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SystemResult:
    """One system on one task: what it found, what it spent, or why it did not run."""

    system: str
    task: str
    status: str  # "ok", "skipped" or "failed"
    note: str = ""
    version: str = ""
    method: str = ""
    candidates: int = 0
    calls: int = 0
    seconds: float = 0.0
    start_val: float | None = None
    best_val: float | None = None
    start_test: dict[str, Any] | None = None
    best_test: dict[str, Any] | None = None
    start_prompt: str = ""
    best_prompt: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def first_line(text: str | None) -> str | None:
    """The first non-empty line of a reply (where the base-model programs' stop ``\n`` ends
    sammo-core's replies).

    >>> first_line("  \\n yes\\nInput: more")
    'yes'
    >>> first_line("") is None
    True
    """
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return None


def extract_answer(text: str | None) -> Any:
    """A peer's answer read as sammo-core's row reads its own: the reply up to the stop
    sequence of the base-model program (its first non-empty line), then the plain data
    format's parser (the program's ``auto`` parser), which also drops an ``Output:`` label.

    >>> extract_answer("  \\n Output: yes\\nInput: more"), extract_answer(None)
    ('yes', None)
    """
    from sammo_core.parsing import parse_output

    line = first_line(text)
    return None if line is None else parse_output("auto", line, 1, "plain")[0]


def score_predictions(
    labels: Sequence[str] | None, gold: Sequence[Any], replies: Sequence[str | None]
) -> dict[str, Any]:
    """sammo-core's objective over a peer's replies to the test rows, as a score dict.

    Each reply's prediction is :func:`extract_answer`'s, the extraction of sammo-core's own
    rows (so all the systems are scored the same way); :class:`LabelAccuracy` (or
    :class:`Accuracy` for a task without a label set) scores it, with the same (Wilson)
    interval as ``bench run``'s, and keeps each row's score (``per_item``) for the paired
    comparisons.

    >>> s = score_predictions(("no", "yes"), ["yes", "no"], ["Output: Yes\\nInput: x", "maybe"])
    >>> s["value"], s["name"], s["per_item"]
    (0.5, 'label_accuracy', [1.0, 0.0])
    >>> score_predictions(("no", "yes"), ["yes"], [])
    Traceback (most recent call last):
    ...
    sammo_core.errors.DataError: 1 gold outputs but 0 replies; a side must answer every test row
    """
    from sammo_core.errors import DataError
    from sammo_core.objectives import Accuracy, LabelAccuracy, Objective
    from sammo_core.results import ResultRow, ResultTable

    if len(gold) != len(replies):
        raise DataError(
            f"{len(gold)} gold outputs but {len(replies)} replies; a side must answer every "
            "test row"
        )
    objective: Objective = LabelAccuracy(tuple(labels)) if labels else Accuracy()
    rows = tuple(
        ResultRow(i, None, g, "", r or "", extract_answer(r))
        for i, (g, r) in enumerate(zip(gold, replies, strict=True))
    )
    score = objective.score(ResultTable(rows))
    return {
        "name": score.name,
        "value": score.value,
        "ci_low": score.ci_low,
        "ci_high": score.ci_high,
        "per_item": list(score.per_item or ()),
    }


def paired(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> PairedComparison | None:
    """``a - b`` row by row for two score dicts of the same test rows (:func:`compare_paired`);
    ``None`` unless both keep their rows' scores.

    >>> print(paired({"per_item": [1.0, 1.0, 0.0]}, {"per_item": [0.0, 1.0, 0.0]}))
    +0.333 [+0.000, +1.000] (n=3; 1 row better, 0 worse; McNemar p=1.000)
    >>> paired({"value": 0.5}, {"per_item": [1.0]}) is None
    True
    """
    from sammo_core.stats import compare_paired

    items_a, items_b = (a or {}).get("per_item"), (b or {}).get("per_item")
    if not items_a or not items_b or len(items_a) != len(items_b):
        return None
    return compare_paired(items_a, items_b)


def _paired_text(comparison: PairedComparison | None) -> str:
    if comparison is None:
        return "-"
    c = comparison
    text = f"{c.diff:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}] ({c.wins}/{c.losses}"
    return text + ("" if c.p_value is None else f", p={format_p(c.p_value)}") + ")"


def _score_text(score: Mapping[str, Any] | None) -> str:
    if not score:
        return "-"
    value = float(score["value"])
    if score.get("ci_low") is None or score.get("ci_high") is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{float(score['ci_low']):.3f}, {float(score['ci_high']):.3f}]"


def _val_text(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"


def render_table(results: Sequence[SystemResult]) -> str:
    """The comparison as one markdown table: a row per task and system.

    The two paired columns compare on the same test rows, row by row: the system's best with
    its start, and sammo-core's best with this system's (``better/worse`` counts rows, ``p`` is
    McNemar's); ``-`` where a side kept no per-row scores.

    >>> r = SystemResult("dspy", "navigate", "skipped", note="no virtualenv; use --setup")
    >>> print(render_table([r]))
    | task | system | method | val start -> best | test start | test best (95% CI) | best - start (paired 95% CI; better/worse, p) | sammo-core best - this best (paired) | candidates | calls | s | note |
    | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
    | navigate | dspy | - | - | - | - | - | - | - | - | - | skipped: no virtualenv; use --setup |
    """  # noqa: E501
    header = [
        *("task", "system", "method", "val start -> best", "test start", "test best (95% CI)"),
        "best - start (paired 95% CI; better/worse, p)",
        "sammo-core best - this best (paired)",
        *("candidates", "calls", "s", "note"),
    ]
    ours = {r.task: r for r in results if r.system == OURS[0] and r.status == "ok"}
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for r in results:
        ok = r.status == "ok"
        name = f"{r.system} {r.version}".strip()
        note = r.note if ok else f"{r.status}: {r.note}"
        cells = [
            r.task,
            name,
            r.method or "-",
            f"{_val_text(r.start_val)} -> {_val_text(r.best_val)}" if ok else "-",
            _score_text(r.start_test) if ok else "-",
            _score_text(r.best_test) if ok else "-",
            _paired_text(paired(r.best_test, r.start_test)) if ok else "-",
            _paired_text(paired(ours[r.task].best_test, r.best_test))
            if ok and r.task in ours and r.system != OURS[0]
            else "-",
            str(r.candidates) if ok else "-",
            str(r.calls) if ok else "-",
            f"{r.seconds:.0f}" if ok else "-",
            note.replace("|", "\\|").replace("\n", " "),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_report(results: Sequence[SystemResult], settings: Mapping[str, Any]) -> str:
    """The markdown report: settings, the table, then per task and system the winning prompt
    (for the first test row) and its diff from the start prompt.

    >>> r = SystemResult("sammo-core", "t", "ok", start_prompt="Task\\n", best_prompt="Task\\nA\\n")
    >>> text = render_report([r], {"budget": 2})
    >>> "+A" in text and "### t: sammo-core" in text
    True
    """
    out = [
        "# sammo-core, SAMMO and DSPy on a base model",
        "",
        ", ".join(f"{k}: {v}" for k, v in settings.items()),
        "",
        "Test scores: sammo-core's objective over each winner's replies to the same test rows "
        "(every system's answers read alike: a reply's first line, then the plain data format's "
        "parser, as sammo-core reads its own), with 95% intervals (Wilson for "
        "accuracies). Differences are paired on those rows: the mean difference with a paired "
        "bootstrap interval, the rows better/worse and the exact McNemar p-value. val: the "
        "score each system's own search saw on the validation rows. calls: requests the "
        "system sent to the server, search and test together.",
        "",
        render_table(results),
        "",
    ]
    for r in results:
        if r.status != "ok":
            continue
        out += [f"### {r.task}: {r.system}", "", "Winning prompt (first test row):", ""]
        out += [fence(r.best_prompt, "text"), ""]
        diff = prompt_diff(r.start_prompt, r.best_prompt)
        out += ["Diff from the start:", "", fence(diff or "(unchanged)", "diff"), ""]
    return "\n".join(out)


# -- the three sides -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Settings:
    """What every system gets alike."""

    tasks: tuple[str, ...] = DEFAULT_TASKS
    val_rows: int = 20
    test_rows: int = 50
    budget: int = 24
    seed: int = 0
    concurrency: int = 4
    timeout: float = 3600.0

    def __post_init__(self) -> None:
        for flag, value in (
            ("--val-rows", self.val_rows),
            ("--test-rows", self.test_rows),
            ("--budget", self.budget),
            ("--concurrency", self.concurrency),
        ):
            if value < 1:
                raise ConfigError(f"{flag} must be >= 1; got {value}")
        if not self.tasks:
            raise ConfigError("--tasks names no task; pass e.g. --tasks implicatures")


def peer_job(
    task: str, data_dir: Path | None, settings: Settings, base_url: str, model: str
) -> dict[str, Any]:
    """The JSON job a peer's side reads: the task's splits, the model, the budget."""
    from benchmarks import datasets
    from benchmarks.suites import BASE_MODEL_MAX_TOKENS, BASE_MODEL_STOPS

    splits = datasets.load_sammo_instruction_tuning(data_dir, task)
    return {
        "task": task,
        "instructions": splits.instructions,
        "labels": list(splits.labels or ()),
        "train": table_pairs(splits.train),
        "val": table_pairs(splits.val[: settings.val_rows]),
        "test": table_pairs(splits.test[: settings.test_rows]),
        "budget": settings.budget,
        "seed": settings.seed,
        "max_examples": MAX_EXAMPLES,
        "max_tokens": BASE_MODEL_MAX_TOKENS,
        "stop": list(BASE_MODEL_STOPS),
        "base_url": base_url,
        "model": model,
        "concurrency": settings.concurrency,
    }


def run_peer(name: str, python: Path, job: Mapping[str, Any], timeout: float, log: Path) -> Any:
    """Run a peer's side script with ``python`` on ``job``; its result dict.

    The side's stderr (progress, warnings) goes to ``log``.
    """
    script = Path(__file__).parents[1] / "peers" / PEERS[name][2]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as err:
        done = run_side(python, script, job, prefix=RESULT_PREFIX, timeout=timeout, stderr=err)
    if done.result is not None:
        return done.result
    tail = log.read_text(errors="replace").strip().splitlines()[-3:]
    raise RuntimeError(f"{name} side exited {done.returncode}: {' / '.join(tail)} (log: {log})")


def peer_result(name: str, job: Mapping[str, Any], out: Mapping[str, Any]) -> SystemResult:
    """A peer side's output, its test replies scored by sammo-core's objective."""
    labels, gold = job["labels"], [g for _, g in job["test"]]
    return SystemResult(
        system=name,
        task=job["task"],
        status="ok",
        note=out.get("note", ""),
        version=out.get("version", ""),
        method=out.get("method", ""),
        candidates=int(out["candidates"]),
        calls=int(out["calls"]),
        seconds=float(out["seconds"]),
        start_val=out.get("start_val"),
        best_val=out.get("best_val"),
        start_test=score_predictions(labels, gold, out["start_test_replies"]),
        best_test=score_predictions(labels, gold, out["best_test_replies"]),
        start_prompt=out["start_prompt"],
        best_prompt=out["best_prompt"],
    )


def run_ours(
    task: str,
    *,
    data_dir: Path | None,
    settings: Settings,
    base_url: str,
    model: str,
    out: Path,
    scored: bool = False,
) -> SystemResult:
    """``sammo-core bench run base-model`` on ``task`` against the server, from the
    instruction alone as the peers start; ``scored``: answers read by label likelihood (the
    server's echoed log-probabilities) instead of generated."""
    from contextlib import redirect_stdout

    from sammo_core.cli import main as cli_main

    argv = [
        *("bench", "run", "base-model", "--tasks", task, "--model", model),
        *("--base-url", base_url, "--budget", str(settings.budget)),
        *("--val-rows", str(settings.val_rows), "--test-rows", str(settings.test_rows)),
        *("--seed", str(settings.seed), "--concurrency", str(settings.concurrency)),
        # The peers start from the instruction alone and generate their answers: so does the
        # sammo-core row, for a like-for-like comparison; the scored row differs in that only.
        *("--scoring", "labels" if scored else "generate", "--start-shots", "0"),
        *("--out", str(out)),
    ]
    if scored:
        # llama-cpp-python's server answers one request at a time, and an echoed prompt's
        # log-probabilities cost a softmax over Gemma's 262k-word vocabulary per token: a
        # queued scoring request can wait minutes on two cores.
        argv += ["--timeout", str(SCORED_TIMEOUT)]
    if data_dir is not None:
        argv += ["--data-dir", str(data_dir)]
    started = time.perf_counter()
    with redirect_stdout(sys.stderr):
        code = cli_main(argv)
    results = orjson.loads((out / "results.json").read_bytes())
    system = OURS[1] if scored else OURS[0]
    if code != 0 or task not in results["tasks"]:
        why = results.get("errors", {}).get(task, f"exit status {code}")
        return SystemResult(system, task, "failed", note=str(why))
    record = results["tasks"][task]
    base, best = record["baseline"], record["optimized"]
    return SystemResult(
        system=system,
        task=task,
        status="ok",
        note=f"winner's edits: {' <- '.join(_edits(record)) or 'none (the start won)'}",
        method=f"beam {record['search']['params'].get('width', '?')}-wide, structure + "
        "examples + format operators",
        candidates=int(record["search"]["candidates"]),
        calls=int(record["calls"]),
        seconds=time.perf_counter() - started,
        start_val=(base.get("val") or {}).get("value"),
        best_val=(best.get("val") or {}).get("value"),
        # With each test row's score, for the paired comparisons.
        start_test=_with_rows(base),
        best_test=_with_rows(best),
        start_prompt=(out / base["prompt_file"]).read_text(encoding="utf-8"),
        best_prompt=(out / best["prompt_file"]).read_text(encoding="utf-8"),
    )


def _with_rows(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """A ``bench run`` entry's test score with its rows' scores (``test_per_item``)."""
    test = entry.get("test")
    if test is None:
        return None
    return {**test, "per_item": entry.get("test_per_item")}


def _edits(record: Mapping[str, Any]) -> list[str]:
    """The winner's edits, last first, as ``bench run``'s lineage lists them."""
    steps = record["lineage"]
    return [str(s.get("description", "")) for s in reversed(steps) if s.get("operator") != "start"]


# -- the command ---------------------------------------------------------------------------------


def _task_list(text: str) -> tuple[str, ...]:
    """``--tasks``: comma-separated names.

    >>> _task_list("implicatures, navigate")
    ('implicatures', 'navigate')
    """
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _systems(text: str) -> tuple[str, ...]:
    """``--systems``: a comma-separated subset of sammo-core, sammo-core-scored, sammo, dspy.

    >>> _systems("dspy,sammo-core")
    ('sammo-core', 'dspy')
    >>> _systems("ours")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: unknown system 'ours'; use some of: sammo-core, sammo-core-scored, sammo, dspy
    """  # noqa: E501
    chosen = _task_list(text)
    for name in chosen:
        if name not in SYSTEM_NAMES:
            raise argparse.ArgumentTypeError(
                f"unknown system {name!r}; use some of: {', '.join(SYSTEM_NAMES)}"
            )
    return tuple(n for n in SYSTEM_NAMES if n in chosen)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m benchmarks.harness.peer_compare``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.harness.peer_compare",
        description="Compare sammo-core's base-model search with SAMMO 0.3.3 and DSPy 3.4 on "
        "Gemma 3 270M (base) through one llama-cpp-python server; write OUT/peers.md.",
    )
    parser.add_argument(
        "--tasks",
        type=_task_list,
        default=DEFAULT_TASKS,
        help=f"comma-separated instruction-tuning tasks (default: {','.join(DEFAULT_TASKS)})",
    )
    parser.add_argument("--val-rows", type=int, default=20, help="validation rows (default 20)")
    parser.add_argument("--test-rows", type=int, default=50, help="test rows (default 50)")
    parser.add_argument(
        "--budget", type=int, default=24, help="candidate programs per system and task (24)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every search (default 0)")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="requests in flight per system (default 4)"
    )
    parser.add_argument(
        "--systems",
        type=_systems,
        default=DEFAULT_SYSTEMS,
        help="comma-separated subset of sammo-core,sammo-core-scored,sammo,dspy (default: "
        "sammo-core,sammo,dspy; the scored row is slow through llama-cpp-python's server, "
        "which ranks Gemma's whole vocabulary in Python for every echoed prompt token: about "
        "15 s a request on two cores)",
    )
    parser.add_argument(
        "--setup",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="create the peers' virtualenvs (and the server's) where missing, from the "
        "package registry",
    )
    parser.add_argument(
        "--peers-dir",
        type=Path,
        default=default_peers_dir(),
        help="where the virtualenvs live (default ~/.cache/sammo-core/peers)",
    )
    parser.add_argument(
        "--gguf", type=Path, help="the model file (default: local:gemma3's Gemma 3 270M)"
    )
    parser.add_argument(
        "--base-url",
        help="use this running OpenAI-compatible server (with --model) instead of starting one",
    )
    parser.add_argument("--model", help="the model name --base-url serves (with --base-url)")
    parser.add_argument(
        "--server-timeout", type=float, default=300.0, help="seconds to wait for the server"
    )
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds per peer side and task (3600)"
    )
    parser.add_argument("--data-dir", type=Path, help="benchmark data folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    return parser


def _server_python(peers_dir: Path) -> Path | None:
    """This interpreter if it can serve, else the ``server`` virtualenv's if that can."""
    if peer_unavailable(Path(sys.executable), SERVER_MODULES) is None:
        return Path(sys.executable)
    python = peer_python(peers_dir, "server")
    return python if peer_unavailable(python, SERVER_MODULES) is None else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison; write ``OUT/peers.md`` and ``OUT/peers.json``; print the table."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.base_url is None) != (args.model is None):
        parser.error("--base-url and --model go together (a running server and its model)")
    if args.timeout <= 0 or args.server_timeout <= 0:
        parser.error("--timeout and --server-timeout must be > 0 seconds")
    try:
        settings = Settings(
            tasks=args.tasks,
            val_rows=args.val_rows,
            test_rows=args.test_rows,
            budget=args.budget,
            seed=args.seed,
            concurrency=args.concurrency,
            timeout=args.timeout,
        )
    except ConfigError as exc:
        parser.error(str(exc))
    peers = [n for n in args.systems if n in PEERS]
    if args.setup:
        needed = list(peers)
        if args.base_url is None and _server_python(args.peers_dir) is None:
            needed.append("server")
        for name, state in setup_peers(args.peers_dir, needed, log=_say).items():
            _say(f"{name}: {state}")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        base_url, model = args.base_url, args.model
        if base_url is None:
            try:
                base_url, model = stack.enter_context(_start_server(args, out))
            except RuntimeError as exc:
                _say(f"error: {exc}")
                return 2
        results = _compare(
            settings, args=args, peers=peers, base_url=base_url, model=model, out=out
        )
    report = {
        "settings": {**dataclasses.asdict(settings), "model": model, "base_url": base_url},
        "results": [r.to_dict() for r in results],
    }
    (out / "peers.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    shown = {
        "model": model,
        "tasks": ",".join(settings.tasks),
        "val rows": settings.val_rows,
        "test rows": settings.test_rows,
        "budget (candidates)": settings.budget,
        "seed": settings.seed,
    }
    (out / "peers.md").write_text(render_report(results, shown), encoding="utf-8")
    print(render_table(results))
    print(f"wrote {out / 'peers.md'} and {out / 'peers.json'}")
    return 0 if all(r.status != "failed" for r in results) else 1


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _start_server(args: argparse.Namespace, out: Path) -> Any:
    """Serve the GGUF with llama-cpp-python; yield ``(base_url, model)``."""
    python = _server_python(args.peers_dir)
    if python is None:
        raise SystemExit(
            "llama_cpp.server cannot be imported here nor from "
            f"{peer_python(args.peers_dir, 'server')}; add --setup (it creates that "
            f"virtualenv with {SERVER_REQUIREMENT}), or pass --base-url and --model of a "
            "running server"
        )
    gguf = args.gguf
    if gguf is None:
        from sammo_core.runners.local import gemma3_model_path

        gguf = gemma3_model_path()
    if not Path(gguf).is_file():
        raise SystemExit(f"--gguf {gguf} does not exist; pass the path of a GGUF model file")
    port = free_port()
    command = llama_server_command(python, Path(gguf), port)
    log = out / "server.log"
    _say(f"starting the model server: {' '.join(command)} (log: {log})")
    with ModelServer(
        command, f"http://127.0.0.1:{port}/v1", start_timeout=args.server_timeout, log=log
    ) as server:
        yield server.base_url, MODEL_ALIAS


def _compare(
    settings: Settings,
    *,
    args: argparse.Namespace,
    peers: Sequence[str],
    base_url: str,
    model: str,
    out: Path,
) -> list[SystemResult]:
    why_not = {
        name: peer_unavailable(peer_python(args.peers_dir, name), PEERS[name][1]) for name in peers
    }
    results: list[SystemResult] = []
    for task in settings.tasks:
        for system in (s for s in OURS if s in args.systems):
            _say(f"{task}: {system}")
            scored = system == OURS[1]
            try:
                ours = run_ours(
                    task,
                    data_dir=args.data_dir,
                    settings=settings,
                    base_url=base_url,
                    model=model,
                    out=out / ("ours-scored" if scored else "ours"),
                    scored=scored,
                )
                results.append(ours)
            except Exception as exc:  # one system's failure must not hide the others' rows
                results.append(SystemResult(system, task, "failed", note=repr(exc)))
        for name in peers:
            if why_not[name] is not None:
                results.append(SystemResult(name, task, "skipped", note=str(why_not[name])))
                continue
            _say(f"{task}: {name}")
            try:
                job = peer_job(task, args.data_dir, settings, base_url, model)
                python = peer_python(args.peers_dir, name)
                side = run_peer(name, python, job, settings.timeout, out / name / f"{task}.log")
                (out / name / f"{task}.json").write_bytes(
                    orjson.dumps(side, option=orjson.OPT_INDENT_2)
                )
                results.append(peer_result(name, job, side))
            except Exception as exc:
                results.append(SystemResult(name, task, "failed", note=str(exc)))
    return results


if __name__ == "__main__":
    sys.exit(main())
