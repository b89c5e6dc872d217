"""What ``sammo-core optimize`` reads before it searches, for every strategy: the train,
validation and test splits (:func:`splits`) and the run's output folder (:func:`check_out_dir`).

Shared by :mod:`search.cli` and :mod:`search.cli_soft` (prompt tuning), so that neither
imports the other.

>>> import argparse, tempfile
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp())
>>> (folder / "result.json").write_text("{}")
2
>>> check_out_dir(folder, resume=False, force=False)
Traceback (most recent call last):
...
sammo_core.errors.ConfigError: --out ... already holds a run (result.json): add --resume ...
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["RUN_FILES", "check_out_dir", "check_out_path", "splits"]


def splits(args: argparse.Namespace, loaded: Any) -> tuple[Any, Any, Any]:
    """Train, validation and test: files as they are, the rest drawn from ``--data``."""
    from sammo_core.errors import ConfigError
    from sammo_core.loading import load_data

    def read(path: Path) -> Any:
        return load_data(
            path,
            input_field=args.input_field or loaded.input_field,
            output_field=args.output_field or loaded.output_field,
            input_fields=loaded.input_fields,
        )

    text = args.split or "0.5,0.25,0.25"
    try:
        fractions = [float(x) for x in text.split(",")]
    except ValueError as exc:
        raise ConfigError(f"--split {text!r} must be three fractions, e.g. 0.5,0.25,0.25") from exc
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-9:
        raise ConfigError(f"--split {text!r} must be three fractions summing to 1")
    if args.val_data is not None and args.test_data is not None and args.split is not None:
        raise ConfigError(
            f"--split {text!r} has no effect with both --val-data and --test-data (all of "
            "--data is the training split); drop --split"
        )

    data = read(args.data)

    def two_way(keep: float, other: float, name: str) -> tuple[Any, Any]:
        if keep + other <= 0:
            raise ConfigError(
                f"--split {text!r} leaves nothing for train and {name}; e.g. 0.5,0.25,0.25"
            )
        first, second = data.split(keep / (keep + other), None, seed=args.seed)
        return first, second

    train_f, val_f, test_f = fractions
    if args.val_data is not None and args.test_data is not None:
        train, val, test = data, read(args.val_data), read(args.test_data)
    elif args.val_data is not None:
        train, test = two_way(train_f, test_f, "test")
        val = read(args.val_data)
    elif args.test_data is not None:
        train, val = two_way(train_f, val_f, "validation")
        test = read(args.test_data)
    else:
        train, val, test = data.split(*fractions, seed=args.seed)[:3]
    if len(val) == 0:
        where = args.val_data if args.val_data is not None else args.data
        raise ConfigError(f"the validation split of {where} is empty; use more data")
    return train, val, test


RUN_FILES = (
    "run.json",
    "result.json",
    "checkpoint.json",
    "checkpoint.safetensors",
    "trace.jsonl",
    "priors.json",  # what the run learned (search.cli.PRIORS_FILE)
)


def check_out_path(out: Path, *, resume: bool, force: bool) -> None:
    """Refuse contradicting flags and an ``--out`` that is a file, before the folder is made."""
    from sammo_core.errors import ConfigError

    if resume and force:
        raise ConfigError("--resume and --force contradict each other: pass one of them")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder: pass a folder for the run")


def check_out_dir(out: Path, *, resume: bool, force: bool) -> None:
    """Refuse to start a fresh run over an earlier one unless ``--force``."""
    from sammo_core.errors import ConfigError

    check_out_path(out, resume=resume, force=force)
    if resume or force or not out.is_dir():
        return
    earlier = [name for name in RUN_FILES if (out / name).exists()]
    if earlier:
        raise ConfigError(
            f"--out {out} already holds a run ({', '.join(earlier)}): add --resume to continue "
            f"it, pass a new folder (e.g. --out {out}-2), or add --force to replace it"
        )
