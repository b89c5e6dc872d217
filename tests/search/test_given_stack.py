"""Search.run takes the runner stack it is given, accounting included: the stack a command
builds (an AccountingRunner over a cache over the backend) searches exactly as the layers
below its accounting did when the command unwrapped them, with one accounting layer."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from mutators.examples import ChangeExampleCount, SwapExamples
from mutators.mixture import Mixture
from mutators.structure import DropSection, ReorderSections
from sammo_core.errors import BudgetExceededError
from sammo_core.runners.accounting import AccountingRunner, Budget, Usage
from sammo_core.runners.base import Runner
from sammo_core.runners.cache import Cache, CachedRunner
from sammo_core.testing.synthetic import items, start_program, synthetic_model
from search import BeamSearch, SearchBudget, SearchResult


def _search(runner: Runner, out: Path) -> SearchResult:
    ops = Mixture([DropSection(), ChangeExampleCount(), SwapExamples(), ReorderSections()])
    search = BeamSearch(ops, width=2, depth=2, budget=SearchBudget(candidates=6, calls=60), seed=0)
    run = search.run(
        start_program(),
        val=items(8),
        train=items(8, start=200),
        test=items(6, start=9000),
        runner=runner,
        out_dir=out,
    )
    return asyncio.run(run)


def _trace(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "trace.jsonl").read_text().splitlines()]


def _counts(u: Usage) -> Usage:
    return dataclasses.replace(u, wall_seconds=0.0)  # time spent waiting differs run to run


def _same(a: SearchResult, b: SearchResult) -> None:
    assert [c.summary() for c in a.candidates] == [c.summary() for c in b.candidates]
    assert (_counts(a.usage), _counts(a.test_usage)) == (_counts(b.usage), _counts(b.test_usage))
    assert a.stopped == b.stopped
    assert a.test_scores == b.test_scores


def test_the_stack_with_its_accounting_searches_as_the_runner_below_it(tmp_path: Path) -> None:
    below = synthetic_model()
    unwrapped = _search(below, tmp_path / "unwrapped")
    model = synthetic_model()
    stack = AccountingRunner(model)  # what build_stack makes without a cache
    given = _search(stack, tmp_path / "given")
    _same(given, unwrapped)
    assert _trace(tmp_path / "given") == _trace(tmp_path / "unwrapped")
    assert model.calls == below.calls == given.total_usage.calls > 0
    # One accounting layer: the search counted the calls on its own ledger, through the
    # layers below the stack's accounting, not through a second layer on top of it.
    assert stack.usage.calls == 0


def test_a_cached_stack_searches_as_its_cache_did(tmp_path: Path) -> None:
    results = {}
    for how in ("unwrapped", "given"):
        model = synthetic_model()
        with Cache(tmp_path / f"{how}.db") as cache:
            cached = CachedRunner(model, cache)
            runner = cached if how == "unwrapped" else AccountingRunner(cached)
            first = _search(runner, tmp_path / how / "cold")
            again = _search(runner, tmp_path / how / "warm")
        assert again.usage.cache_hits > 0 and model.calls == first.total_usage.calls
        results[how] = (first, again)
    for unwrapped, given in zip(results["unwrapped"], results["given"], strict=True):
        _same(given, unwrapped)


def test_a_stack_whose_accounting_has_a_budget_keeps_it(tmp_path: Path) -> None:
    model = synthetic_model()
    with pytest.raises(BudgetExceededError):
        _search(AccountingRunner(model, Budget(calls=3)), tmp_path / "run")
    assert model.calls <= 3
