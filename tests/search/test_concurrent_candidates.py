"""A search step evaluates its candidates at once, under one concurrency limit, and the same
seed still gives the same trace whatever the concurrency and the order calls answer in."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from mutators import ChangeExampleCount, DropSection, Mixture, ReorderSections, SwapExamples
from mutators.content import Paraphrase
from sammo_core.runners import LLMRequest, LLMResult, Runner, ScriptedRunner
from sammo_core.testing.synthetic import items, start_program, synthetic_model
from search import BeamSearch, RandomSearch, RegularizedEvolution, Search, SearchBudget

VAL = items(8)


class Jittery(Runner):
    """Answers like ``inner`` after a delay set by the prompt, so calls finish out of order;
    counts the calls in flight."""

    def __init__(self, inner: Runner) -> None:
        self.inner, self.model = inner, inner.model
        self.in_flight = self.max_in_flight = self.calls = 0

    async def generate(self, request: LLMRequest) -> LLMResult:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            digest = hashlib.sha256(request.prompt_text.encode()).digest()
            await asyncio.sleep(digest[0] / 255 * 0.004)
            return await self.inner.generate(request)
        finally:
            self.in_flight -= 1


def proposal(request: LLMRequest) -> str:
    return f"Answer yes or no, please. (v{len(request.prompt_text) % 3})"


def make(kind: str, concurrency: int) -> Search:
    ops = Mixture(
        [DropSection(), ChangeExampleCount(), SwapExamples(), ReorderSections(), Paraphrase()]
    )
    common: dict[str, Any] = {
        "budget": SearchBudget(candidates=14),
        "seed": 5,
        "max_concurrency": concurrency,
    }
    if kind in ("beam", "pipelined"):
        return BeamSearch(
            ops, width=3, depth=3, mutations_per_parent=3, pipelined=kind == "pipelined", **common
        )
    if kind == "random":
        return RandomSearch(ops, samples_per_step=4, steps=4, **common)
    return RegularizedEvolution(ops, population_size=5, tournament_size=2, cycles=6, **common)


def trace(kind: str, concurrency: int, out: Path) -> tuple[str, Jittery]:
    model = Jittery(synthetic_model())
    proposer = Jittery(ScriptedRunner(default=proposal, model="proposer"))
    result = asyncio.run(
        make(kind, concurrency).run(
            start_program(),
            val=VAL,
            train=items(8, start=300),
            runner=model,
            proposer=proposer,
            out_dir=out,
        )
    )
    rows = [json.loads(line) for line in (out / "trace.jsonl").read_text().splitlines()]
    # Every call is charged to the candidate that made it, or reported as unattributed, against
    # the runners' own counts: each candidate pays at least the validation rows it was scored
    # on, so every call of the task model is charged to one; only proposals can be left over.
    spent = sum(row["spent"]["calls"] for row in rows)
    assert result.usage.calls == model.calls + proposer.calls
    assert spent + result.unattributed["calls"] == model.calls + proposer.calls
    # (A child sending the requests of an earlier one takes its scores with no call.)
    assert all(row["spent"]["calls"] >= len(VAL) or "same_as" in row for row in rows)
    assert spent >= model.calls and 0 <= result.unattributed["calls"] <= proposer.calls
    return (out / "trace.jsonl").read_text(), model


@pytest.mark.parametrize("kind", ["beam", "pipelined", "random", "evolution"])
def test_the_same_seed_gives_the_same_trace_at_concurrency_1_and_32(
    kind: str, tmp_path: Path
) -> None:
    one, serial = trace(kind, 1, tmp_path / "one")
    many, concurrent = trace(kind, 32, tmp_path / "many")
    assert one == many  # ids, lineage, operators, scores and what each candidate spent
    assert len(one.splitlines()) > 5
    assert serial.max_in_flight == 1
    if kind != "evolution":  # evolution's cycles make one child each
        # Several candidates' rows were in flight at once (before: one candidate's 8 rows).
        assert concurrent.max_in_flight > len(VAL)


def test_candidates_evaluated_at_once_share_one_concurrency_limit(tmp_path: Path) -> None:
    _, model = trace("beam", 4, tmp_path)
    assert model.max_in_flight == 4


def test_each_candidate_is_charged_its_own_evaluation_and_proposals(tmp_path: Path) -> None:
    # Random walks of up to 3 mutations: a child pays its 8 rows and its walk's proposals.
    text, _ = trace("random", 32, tmp_path)
    rows = [json.loads(line) for line in text.splitlines()]
    per_candidate = len(VAL)  # one call per validation row, no cache
    assert {row["spent"]["calls"] - per_candidate for row in rows} <= {0, 1, 2, 3}
    paraphrased = [row for row in rows if "Paraphrase" in row["operator"]]
    assert paraphrased and all(row["spent"]["calls"] > per_candidate for row in paraphrased)


class Logged(Runner):
    """Answers like ``inner`` after ``latency`` seconds, logging ``(kind, event)`` to ``log``."""

    def __init__(self, inner: Runner, kind: str, log: list[tuple[str, str]], latency: float):
        self.inner, self.model, self.kind, self.log = inner, inner.model, kind, log
        self.latency = latency
        self.in_flight = self.max_in_flight = 0

    async def generate(self, request: LLMRequest) -> LLMResult:
        self.log.append((self.kind, "start"))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.latency)
            return await self.inner.generate(request)
        finally:
            self.in_flight -= 1
            self.log.append((self.kind, "end"))


class LoggedMutator(DropSection):
    """DropSection that logs each proposal (it computes without waiting, like most operators)."""

    def __init__(self, log: list[tuple[str, str]]) -> None:
        super().__init__()
        self.log = log

    async def mutate(self, program: Any, rng: Any, n: int = 1, context: Any = None) -> Any:
        self.log.append(("propose", "start"))
        return await super().mutate(program, rng, n, context)


def test_children_are_evaluated_while_later_parents_still_propose() -> None:
    # Before, a step proposed for every parent and only then sent the first task call.
    log: list[tuple[str, str]] = []
    model = Logged(synthetic_model(), "task", log, latency=0.002)
    search = BeamSearch(
        LoggedMutator(log),
        width=3,
        depth=2,
        mutations_per_parent=2,
        budget=SearchBudget(candidates=20),
    )
    asyncio.run(search.run(start_program(), val=VAL, runner=model))
    proposals = [i for i, (kind, _) in enumerate(log) if kind == "propose"]
    assert len(proposals) >= 3  # the start, then a step with at least two parents
    second_step = proposals[1:]
    between = log[second_step[0] : second_step[-1]]
    assert ("task", "start") in between


def test_model_proposals_of_a_step_still_run_at_once() -> None:
    log: list[tuple[str, str]] = []
    model = Logged(synthetic_model(), "task", log, latency=0.001)
    proposer = Logged(ScriptedRunner(default=proposal, model="p"), "proposer", log, 0.02)
    search = BeamSearch(
        Paraphrase(),
        width=3,
        depth=2,
        mutations_per_parent=1,
        budget=SearchBudget(candidates=20),
        seed=2,
    )
    asyncio.run(search.run(start_program(), val=VAL, runner=model, proposer=proposer))
    assert proposer.max_in_flight >= 2  # the parents of step 2 wait for the model together


def test_the_test_split_scores_the_start_and_the_best_at_once() -> None:
    log: list[tuple[str, str]] = []
    model = Logged(synthetic_model(), "task", log, latency=0.005)
    test = items(8, start=900)
    search = BeamSearch(  # one child per step: at most 8 validation calls in flight
        Mixture([DropSection(), SwapExamples()]),
        objectives=("accuracy", "mean_prompt_tokens"),
        width=1,
        depth=3,
        mutations_per_parent=1,
        budget=SearchBudget(candidates=4),
    )
    result = asyncio.run(search.run(start_program(), val=VAL, runner=model, test=test))
    assert len(result.test_scores) >= 2
    # The programs reported on the test split (start, best, front) run at once (before: one
    # program's 8 calls after the other's).
    assert model.max_in_flight == len(test) * len(result.test_scores)


def test_a_pipelined_beam_proposes_each_step_from_the_beam_before_the_last() -> None:
    """Step 2 is proposed while step 1 is scored, so from the start again; step ``k + 1``
    from the beam that step ``k - 1`` left. The candidates budget holds exactly, counting the
    children still in flight."""
    search = BeamSearch(
        Mixture([DropSection(), ChangeExampleCount(), SwapExamples(), ReorderSections()]),
        width=3,
        depth=4,
        mutations_per_parent=3,
        pipelined=True,
        budget=SearchBudget(candidates=25),
        seed=5,
        max_concurrency=8,
    )
    result = asyncio.run(search.run(start_program(), val=VAL, runner=Jittery(synthetic_model())))
    by_step: dict[int, list[Any]] = {}
    for c in result.candidates[1:]:
        by_step.setdefault(c.step, []).append(c)
    assert len(result.candidates) == 25
    assert {c.parent for c in by_step[1]} == {c.parent for c in by_step[2]} == {0}
    assert len(by_step[2]) == 3  # the start's 3 children, none equal to step 1's
    assert {c.hash for c in by_step[1]}.isdisjoint(c.hash for c in by_step[2])
    # Step 3's parents: the beam after step 1 (the start and its best children), none of step 2.
    assert {c.parent for c in by_step[3]} <= {0, *(c.id for c in by_step[1])}
    assert not {c.parent for c in by_step[3]} & {c.id for c in by_step[2]}


def test_pipelining_refuses_racing() -> None:
    from sammo_core.errors import ConfigError
    from search.racing import Racing

    with pytest.raises(ConfigError, match="--racing off, or drop --pipeline"):
        BeamSearch(DropSection(), pipelined=True, racing=Racing("halving"),
                   budget=SearchBudget(candidates=4))  # fmt: skip
