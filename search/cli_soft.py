"""``sammo-core optimize --strategy prompt-tuning``: train a program's soft prompt.

The options of :mod:`search.cli`'s ``optimize`` hold (program, data and splits, ``--seed``,
``--out``, ``--resume``, ``--force``); ``--model`` must name an in-process transformers model
(``hf:gemma3``, ``hf:smollm2``, ``hf:PATH``) and ``--budget`` counts training steps
(``70``, ``steps=70``) or seconds (``seconds=600``). A hard program gets a soft prompt
prepended: give the ``best_program.json`` of a hard-prompt search for the hybrid.

>>> parse_training_budget("70"), parse_training_budget("steps=50,seconds=120")
((70, None), (50, 120.0))
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from sammo_core.errors import ConfigError
from sammo_core.run_files import write_file

__all__ = [
    "ADAPTER_DIR",
    "add_prompt_tuning_arguments",
    "parse_training_budget",
    "program_adapter",
    "prompt_tune",
]

HF_PREFIX = "hf:"
#: The folder of an export that holds the soft prompt as a PEFT adapter.
ADAPTER_DIR = "adapter"
#: Outputs with at most this many distinct values are taken as the label set.
MAX_LABELS = 20


def add_prompt_tuning_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The options of ``--strategy prompt-tuning``, as one group (returned)."""
    g = parser.add_argument_group(
        "prompt tuning (--strategy prompt-tuning, with --model hf:gemma3)"
    )
    g.add_argument(
        "--soft-tokens",
        type=int,
        default=20,
        help="virtual tokens of the soft prompt prepended to a hard program (default 20)",
    )
    g.add_argument(
        "--soft-init",
        help="text whose token embeddings start the soft prompt (default: the program's soft "
        "prompt's init; none: random vocabulary embeddings drawn with --seed)",
    )
    g.add_argument("--lr", type=float, default=0.01, help="AdamW learning rate (default 0.01)")
    g.add_argument("--batch-size", type=int, default=8, help="training rows per step (default 8)")
    g.add_argument(
        "--eval-every",
        type=int,
        default=10,
        help="steps between validation scores and checkpoints (default 10)",
    )
    g.add_argument(
        "--train-budget",
        metavar="STEPS",
        help="training budget: N steps, or steps=N,seconds=S (default 50 steps); --budget N "
        "is read the same way here, as before",
    )
    g.add_argument(
        "--patience",
        type=int,
        help="stop after this many validation scores without a new best (default: never)",
    )
    return g


def parse_training_budget(text: str) -> tuple[int | None, float | None]:
    """``N`` or ``steps=N``, ``seconds=S``, or both: the training budget of prompt tuning."""
    steps: int | None = None
    seconds: float | None = None
    for part in text.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            key, value = "steps", key
        try:
            if key == "steps":
                steps = int(value)
            elif key == "seconds":
                seconds = float(value)
            else:
                raise ValueError(key)
        except ValueError:
            raise ConfigError(
                f"--budget {text!r}: prompt tuning counts steps or seconds, e.g. --budget 70, "
                "--budget steps=70 or --budget seconds=600"
            ) from None
    return steps, seconds


def _labels(args: argparse.Namespace, tables: list[Any]) -> list[str]:
    if args.labels:
        labels = [x.strip() for x in args.labels.split(",") if x.strip()]
        if len(labels) < 2:
            raise ConfigError(f"--labels {args.labels!r} needs at least two labels, e.g. yes,no")
        return labels
    seen = sorted({str(o).strip() for t in tables for o in t.outputs if o is not None})
    if not 2 <= len(seen) <= MAX_LABELS:
        raise ConfigError(
            f"the data has {len(seen)} distinct gold outputs, not a closed label set of 2 to "
            f"{MAX_LABELS}: prompt tuning classifies; pass --labels a,b,... naming the labels"
        )
    return seen


def prompt_tune(args: argparse.Namespace) -> int:
    """Run ``optimize --strategy prompt-tuning`` (``args`` as ``optimize`` parsed them)."""
    import orjson
    from rich.console import Console

    from sammo_core.cli_run import load_program_from_args
    from sammo_core.runners.hf import load_hf_model
    from search.cli_inputs import check_out_dir, splits
    from search.prompt_tuning import PromptTuner
    from search.soft_training import TrainConfig

    console = Console(stderr=True, soft_wrap=True)  # a log keeps each line whole
    if not args.model.startswith(HF_PREFIX):
        raise ConfigError(
            f"--strategy prompt-tuning trains in-process and needs a transformers model: "
            f"--model hf:gemma3 (or hf:smollm2, hf:PATH); got --model {args.model}"
        )
    steps, seconds = parse_training_budget(args.budget)
    config = TrainConfig(
        steps=steps,
        seconds=seconds,
        batch_size=args.batch_size,
        lr=args.lr,
        eval_every=args.eval_every,
        patience=args.patience,
        seed=args.seed,
    )
    check_out_dir(args.out, resume=args.resume, force=args.force)
    loaded = load_program_from_args(args)
    train, val, test = splits(args, loaded)
    labels = _labels(args, [train, val, test])
    spec = args.model[len(HF_PREFIX) :]
    console.print(f"loading {args.model} ...")
    hf = load_hf_model(spec)  # before anything is written: a bad --model leaves no run behind
    strategy = PromptTuner(
        hf, labels, n_tokens=args.soft_tokens, init=args.soft_init, config=config
    )
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "model": args.model,
        "program": str(args.program),
        "data": str(args.data),
        "data_hash": {
            "train": train.content_hash(),
            "val": val.content_hash(),
            "test": test.content_hash(),
        },
        "strategy": args.strategy,
        "budget": args.budget,
        "seed": args.seed,
        "objective": "accuracy",
        "labels": labels,
        "input_field": args.input_field or loaded.input_field,
        "output_field": args.output_field or loaded.output_field,
        "input_fields": None if loaded.input_fields is None else list(loaded.input_fields),
    }
    write_file(args.out, "run.json", orjson.dumps(meta, option=orjson.OPT_INDENT_2))
    console.print(
        f"[bold]PromptTuning[/] on {args.model}: train {len(train)}, val {len(val)}, test "
        f"{len(test)} rows; labels {labels}; {config.describe()}"
    )
    started = time.perf_counter()

    def show(record: dict[str, Any]) -> None:
        loss = "" if record["loss"] is None else f", loss {record['loss']:.4f}"
        console.print(
            f"  step {record['step']}{loss}, val accuracy {record['val']:.3f} "
            f"({record['seconds']:.0f} s)"
        )

    result = strategy.run(
        loaded.program,
        train=train,
        val=val,
        test=test,
        out_dir=args.out,
        resume=args.resume,
        on_eval=show,
    )
    print(result.report(), end="")
    console.print(
        f"{time.perf_counter() - started:.1f} s; run written to {args.out} (export the program "
        f"and a PEFT adapter with: sammo-core export {args.out})"
    )
    return 0


def program_adapter(program: Any, out: Path, model: str) -> Path | None:
    """Write the program's trained soft prompt as a PEFT adapter into ``out/adapter``;
    ``None`` when the program holds no soft prompt. ``model`` is the run's ``--model``."""
    from sammo_core.export import exported_soft_prompt
    from sammo_core.soft import require_soft

    soft = exported_soft_prompt(program)
    if soft is None:
        return None
    assert soft.tensor is not None  # exported_soft_prompt refuses an untrained one
    require_soft()
    from search.peft_export import write_peft_adapter

    base = model.removeprefix(HF_PREFIX)
    return write_peft_adapter(soft.tensor.to_torch().float(), out / ADAPTER_DIR, base_model=base)
