"""What ``sammo-core run`` reads from its command line before any call: the program (with
``--labels``, ``--calibrate``, ``--mode`` and ``--stop`` applied, and a base model's defaults),
the data and the objective (:func:`load_inputs`), and the output folder (:func:`check_out_dir`);
and the progress bar the long commands show.

Shared by ``run`` (:mod:`sammo_core.cli_run`), ``run --compare`` (:mod:`sammo_core.cli_compare`)
and ``optimize``, so that ``cli_compare`` need not import ``cli_run``, which dispatches to it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sammo_core.run_files import make_folder

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from sammo_core.data import DataTable
    from sammo_core.loading import ProgramFile
    from sammo_core.objectives import Objective

__all__ = [
    "OUT_FILES",
    "check_out_dir",
    "labelled_program",
    "load_inputs",
    "load_program_from_args",
    "progress_bar",
]


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

    from sammo_core.objectives import LabelAccuracy, parse_objectives, unwrapped
    from sammo_core.runners.factory import is_base_model

    model = getattr(args, "model", None) or ""
    spec = getattr(args, "objective", None) or loaded.objective
    if not is_base_model(model) or not spec:
        return None
    read = [unwrapped(o) for o in parse_objectives(spec)]  # NAME@MODEL reads NAME
    found = next((o for o in read if isinstance(o, LabelAccuracy)), None)
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


OUT_FILES = ("results.json", "predictions.jsonl", "program.json")


def load_inputs(args: argparse.Namespace) -> tuple[ProgramFile, DataTable, Objective]:
    """Program, data and objective, each checked before any runner is built."""
    from sammo_core.errors import ConfigError
    from sammo_core.loading import load_data
    from sammo_core.objectives import OnModel, get_objective

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
    objective = get_objective(spec)
    if isinstance(objective, OnModel):  # refused before any call, not after the rows ran
        raise ConfigError(
            f"--objective {spec}: one model's score is an objective of optimize with --model "
            f"given more than once; this command runs one model: drop '@{objective.model}'"
        )
    return loaded, data, objective
