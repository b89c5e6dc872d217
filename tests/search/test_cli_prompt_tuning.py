"""``optimize --strategy prompt-tuning``: its errors name the bad flag and the fix, before any
model is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from sammo_core.cli import main
from sammo_core.testing.imports import loaded_by_importing
from search.cli_soft import parse_training_budget

EXAMPLES = Path(__file__).parents[2] / "sammo_core" / "examples"
PROGRAM, DATA = str(EXAMPLES / "yesno.py"), str(EXAMPLES / "yesno.jsonl")


def optimize(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "optimize", PROGRAM, "--data", DATA, "--strategy", "prompt-tuning",
        "--out", str(tmp_path / "run"), *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--model", "local", "--budget", "10"],
            "--strategy prompt-tuning trains in-process and needs a transformers model: "
            "--model hf:gemma3 (or hf:smollm2, hf:PATH); got --model local",
        ),
        (
            ["--model", "hf:gemma3", "--budget", "candidates=8"],
            "--budget 'candidates=8': prompt tuning counts steps or seconds, e.g. --budget 70",
        ),
        (
            ["--model", "hf:gemma3", "--budget", "10", "--lr", "-1"],
            "lr must be a positive number; got -1.0",
        ),
        (
            ["--model", "hf:gemma3", "--budget", "10", "--labels", "yes"],
            "--labels 'yes' needs at least two labels, e.g. yes,no",
        ),
        (
            ["--model", "hf:no-such-model", "--budget", "10"],
            "unknown transformers model 'no-such-model'",
        ),
        # --train-budget is prompt tuning's own flag; --budget, its old spelling, still works
        (
            ["--model", "local", "--train-budget", "10"],
            "--strategy prompt-tuning trains in-process and needs a transformers model",
        ),
        (
            ["--model", "hf:gemma3", "--train-budget", "candidates=8"],
            "prompt tuning counts steps or seconds",
        ),
        (
            ["--model", "hf:gemma3", "--train-budget", "10", "--budget", "12"],
            "--train-budget 10 and --budget 12 both set prompt tuning's training budget; pass "
            "--train-budget alone",
        ),
        (
            ["--model", "hf:gemma3", "--train-budget", "10", "--strategy", "beam"],
            "--train-budget 10 is prompt tuning's (--strategy prompt-tuning); a search's budget "
            "is --budget",
        ),
    ],
)
def test_bad_flags_end_in_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(optimize(tmp_path, *extra)) != 0
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_budget_forms() -> None:
    assert parse_training_budget("70") == (70, None)
    assert parse_training_budget("seconds=90") == (None, 90.0)
    assert parse_training_budget("steps=5, seconds=1.5") == (5, 1.5)


def test_help_lists_the_strategy_and_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["optimize", "--strategy", "prompt-tuning", "--help"])
    out = capsys.readouterr().out
    assert "prompt-tuning" in out and "--soft-tokens" in out and "--soft-init" in out


def test_importing_the_strategy_the_cli_and_the_benchmark_imports_no_torch() -> None:
    modules = [
        "search.cli", "search.cli_soft", "search.prompt_tuning", "search.soft_training",
        "search.peft_export", "benchmarks.harness.soft_compare",
    ]  # fmt: skip
    assert loaded_by_importing(modules, ["torch", "transformers", "peft"]) == []
