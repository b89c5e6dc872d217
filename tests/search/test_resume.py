"""A search killed mid-way and resumed ends exactly like one that never stopped."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pyglove as pg
import pytest

from mutators.examples import ChangeExampleCount, SwapExamples
from mutators.mixture import Mixture
from mutators.structure import DropSection, ReorderSections
from sammo_core import ConfigError, Output, find_one
from sammo_core.runners import LLMRequest, LLMResult, Runner
from sammo_core.testing.synthetic import items, start_program, synthetic_model
from search import (
    BeamSearch,
    EnumerativeSearch,
    RegularizedEvolution,
    Search,
    SearchBudget,
    SearchResult,
)

VAL, TEST = items(20), items(20, start=100)
# Room for the uninterrupted run (580 calls) and the work a resume redoes after a crash.
BUDGET = 1000


class Crash(Exception):
    """Stands for the process dying (not a library error, so nothing catches it)."""


class CrashAfter(Runner):
    def __init__(self, inner: Runner, calls: int) -> None:
        self.inner, self.left, self.model = inner, calls, inner.model
        self.attempts = 0  # calls that reached this runner, the crashed ones included

    async def generate(self, request: LLMRequest) -> LLMResult:
        self.attempts += 1
        if self.left <= 0:
            raise Crash("killed")
        self.left -= 1
        return await self.inner.generate(request)


def make(kind: str) -> Search:
    ops = Mixture([DropSection(), ChangeExampleCount(), SwapExamples(), ReorderSections()])
    if kind in ("beam", "pipelined"):
        return BeamSearch(
            ops,
            width=2,
            depth=4,
            budget=SearchBudget(calls=BUDGET),
            seed=3,
            pipelined=kind == "pipelined",
        )
    return RegularizedEvolution(
        ops,
        population_size=4,
        tournament_size=2,
        cycles=12,
        budget=SearchBudget(calls=BUDGET),
        seed=3,
    )


def go(search: Search, runner: Runner, out: Path, resume: bool = False) -> SearchResult:
    return asyncio.run(
        search.run(start_program(), val=VAL, test=TEST, runner=runner, out_dir=out, resume=resume)
    )


@pytest.mark.parametrize("kind", ["beam", "pipelined", "evolution"])
@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.9])
def test_resume_after_a_crash_gives_the_uninterrupted_result(
    kind: str, fraction: float, tmp_path: Path
) -> None:
    model = synthetic_model()
    whole = go(make(kind), model, tmp_path / "whole")
    crash_after = int(whole.usage.calls * fraction)  # during the search, not its test report

    crashing = CrashAfter(synthetic_model(), crash_after)
    with pytest.raises(Crash):
        go(make(kind), crashing, tmp_path / "crashed")
    after = synthetic_model()
    resumed = go(make(kind), after, tmp_path / "crashed", resume=True)

    assert [c.hash for c in resumed.candidates] == [c.hash for c in whole.candidates]
    assert [c.description for c in resumed.candidates] == [c.description for c in whole.candidates]
    assert resumed.best.id == whole.best.id
    assert resumed.best.scores == whole.best.scores
    assert resumed.test_scores == whole.test_scores
    # Usage counts every call both sessions made (a call that crashed may have been billed),
    # not just those the checkpoint saw: the work redone after the last checkpoint costs.
    resumed_search_calls = after.calls - resumed.test_usage.calls  # the test report is apart
    assert resumed.usage.calls == crashing.attempts + resumed_search_calls >= whole.usage.calls
    assert resumed.usage.calls <= BUDGET
    assert resumed.stopped == whole.stopped


def test_resume_refuses_another_search(tmp_path: Path) -> None:
    go(make("beam"), synthetic_model(), tmp_path)
    other = BeamSearch(Mixture([DropSection()]), budget=SearchBudget(calls=BUDGET), seed=4)
    with pytest.raises(ConfigError, match="belongs to a different search"):
        go(other, synthetic_model(), tmp_path, resume=True)
    fresh = go(make("beam"), synthetic_model(), tmp_path / "empty", resume=True)
    assert fresh.best.id == go(make("beam"), synthetic_model(), tmp_path / "again").best.id


def test_enumerative_resume_refuses_another_space_with_the_same_first_point(
    tmp_path: Path,
) -> None:
    def space(counts: list[int]) -> Output:
        program = start_program()
        path = find_one(program, "Examples").path + ".n"
        return pg.clone(program, override={path: pg.oneof(counts)})  # type: ignore[no-any-return]

    def enumerate_(counts: list[int], resume: bool = False) -> SearchResult:
        search = EnumerativeSearch(batch_size=1, budget=SearchBudget(candidates=2), seed=0)
        return asyncio.run(
            search.run(
                space(counts),
                val=VAL,
                runner=synthetic_model(),
                out_dir=tmp_path,
                resume=resume,
            )
        )

    first = enumerate_([1, 2])
    assert len(first.candidates) == 2
    with pytest.raises(ConfigError, match="belongs to a different search"):
        enumerate_([1, 3], resume=True)  # same first point, different space
    assert len(enumerate_([1, 2], resume=True).candidates) == 2


def test_checkpoints_serialize_each_program_once_and_resume_writes_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import search.base
    from sammo_core.serialization import to_json

    serialized = 0

    def counting(program: Output) -> object:
        nonlocal serialized
        serialized += 1
        return to_json(program)

    monkeypatch.setattr(search.base, "to_json", counting)
    whole = go(make("beam"), synthetic_model(), tmp_path / "whole")
    # One checkpoint per step rewrites every program; before, each was serialized again at
    # every checkpoint. (The run's fingerprint serializes the start program in its legacy form,
    # serialization.legacy_json, not counted here.)
    assert serialized == len(whole.candidates)

    crashing = CrashAfter(synthetic_model(), int(whole.usage.calls * 0.5))
    with pytest.raises(Crash):
        go(make("beam"), crashing, tmp_path / "crashed")
    go(make("beam"), synthetic_model(), tmp_path / "crashed", resume=True)
    for name in ("trace.jsonl", "checkpoint.json"):
        whole_bytes = (tmp_path / "whole" / name).read_bytes()
        resumed_bytes = (tmp_path / "crashed" / name).read_bytes()
        if name == "checkpoint.json":  # usage differs: the crashed session's calls count
            whole_state, resumed_state = json.loads(whole_bytes), json.loads(resumed_bytes)
            whole_state.pop("usage"), resumed_state.pop("usage")
            # and the test report's usage carries its wall time (its scores must match)
            whole_state["test_report"].pop("usage"), resumed_state["test_report"].pop("usage")
            assert whole_state == resumed_state
        else:
            assert whole_bytes == resumed_bytes
