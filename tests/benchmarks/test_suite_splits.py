"""The suites use the published splits as they are: no seed reshuffles or redraws them."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.datasets import (
    load_liar,
    load_sammo_compression,
    load_sammo_instruction_tuning,
)
from benchmarks.suites import SuiteOptions, get_suite


@pytest.mark.parametrize(
    ("suite", "task", "load"),
    [
        ("instruction-tuning", "implicatures", load_sammo_instruction_tuning),
        ("compression", "task108", load_sammo_compression),
        ("apo", "liar", lambda d, _: load_liar(d)),
    ],
)
@pytest.mark.parametrize("seed", [0, 5])
def test_suites_keep_the_published_splits_and_their_order(
    data_dir: Path, suite: str, task: str, load: object, seed: int
) -> None:
    published = load(data_dir, task)  # type: ignore[operator]
    built = get_suite(suite).build(task, data_dir, SuiteOptions(seed=seed, strategy="beam"))
    assert built.train is not None
    for name in ("train", "val", "test"):
        mine, theirs = getattr(built, name), getattr(published, name)
        assert list(mine.inputs) == list(theirs.inputs), name
        assert list(mine.outputs) == list(theirs.outputs), name


def test_max_rows_takes_the_first_published_rows(data_dir: Path) -> None:
    published = load_sammo_instruction_tuning(data_dir, "navigate")
    for seed in (0, 9):
        built = get_suite("instruction-tuning").build(
            "navigate", data_dir, SuiteOptions(seed=seed, max_rows=6)
        )
        assert built.train is not None
        assert list(built.train.inputs) == list(published.train.inputs[:6])
        assert list(built.val.inputs) == list(published.val.inputs[:6])
        assert list(built.test.inputs) == list(published.test.inputs[:6])


def test_apo_suite_notes_say_what_the_gradients_learn_from(data_dir: Path) -> None:
    notes = get_suite("apo").build("liar", data_dir, SuiteOptions()).notes
    assert "validation errors" not in notes
    assert "training" in notes
