"""A search's result compares the best program with the start on the same test rows."""

from __future__ import annotations

import asyncio

import pytest

from mutators import ChangeExampleCount, DropSection, Mixture
from sammo_core.objectives import get_objective
from sammo_core.stats import mcnemar_exact
from sammo_core.testing.synthetic import items, start_program, synthetic_model
from search import BeamSearch, SearchBudget


def search(objectives: list[str]) -> BeamSearch:
    return BeamSearch(
        Mixture([DropSection(), ChangeExampleCount()]),
        width=3,
        depth=3,
        budget=SearchBudget(candidates=30),
        seed=0,
        objectives=[get_objective(name) for name in objectives],
    )


def test_the_best_is_compared_with_the_start_row_by_row_on_test() -> None:
    result = asyncio.run(
        search(["accuracy"]).run(
            start_program(), val=items(40), test=items(40, start=100), runner=synthetic_model()
        )
    )
    best = result.test_scores[result.best.id]["accuracy"]
    start = result.test_scores[result.start.id]["accuracy"]
    comparison = result.test_comparison
    assert comparison is not None
    assert comparison.diff == pytest.approx(best.value - start.value) == pytest.approx(0.5)
    wrong_before = sum(1 for v in start.per_item or () if v == 0.0)
    assert (comparison.n, comparison.wins, comparison.losses) == (40, wrong_before, 0)
    assert comparison.p_value == mcnemar_exact(wrong_before, 0) < 1e-5
    assert comparison.excludes_zero
    saved = result.to_dict()["test_comparison"]
    assert saved["objective"] == "accuracy" and saved["best"] == result.best.id
    assert saved["wins"] == wrong_before and saved["p_value"] == comparison.p_value


def test_without_a_test_split_there_is_no_comparison() -> None:
    untested = asyncio.run(
        search(["accuracy"]).run(start_program(), val=items(20), runner=synthetic_model())
    )
    assert untested.test_comparison is None
    assert untested.to_dict()["test_comparison"] is None


def test_a_graded_primary_objective_is_compared_without_mcnemar_in_its_direction() -> None:
    result = asyncio.run(
        search(["mean_prompt_tokens", "accuracy"]).run(
            start_program(), val=items(20), test=items(20, start=100), runner=synthetic_model()
        )
    )
    comparison = result.test_comparison
    assert comparison is not None and comparison.p_value is None
    assert comparison.direction == "minimize"
    best = result.test_scores[result.best.id]["mean_prompt_tokens"]
    start = result.test_scores[result.start.id]["mean_prompt_tokens"]
    assert comparison.diff == pytest.approx(best.value - start.value)
    fewer = sum(1 for b, s in zip(best.per_item or (), start.per_item or (), strict=True) if b < s)
    assert comparison.wins == fewer
