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
from sammo_core.objectives import Accuracy
from sammo_core.runners import LLMRequest, LLMResult, Runner, ScriptedRunner
from sammo_core.testing.synthetic import items, start_program, synthetic_model
from search import BeamSearch, RandomSearch, RegularizedEvolution, Search, SearchBudget
from search.evaluator import Evaluator

VAL = items(8)


class Jittery(Runner):
    """Answers like ``inner`` after a delay set by the prompt, so calls finish out of order;
    counts the calls in flight."""

    def __init__(self, inner: Runner) -> None:
        self.inner, self.model = inner, inner.model
        self.in_flight = self.max_in_flight = 0

    async def generate(self, request: LLMRequest) -> LLMResult:
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
    if kind == "beam":
        return BeamSearch(ops, width=3, depth=3, mutations_per_parent=3, **common)
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
    # Every call is charged to the candidate that made it, or reported as unattributed.
    spent = sum(row["spent"]["calls"] for row in rows)
    assert spent + result.unattributed["calls"] == result.usage.calls
    assert all(row["spent"]["calls"] >= 0 for row in rows)
    return (out / "trace.jsonl").read_text(), model


@pytest.mark.parametrize("kind", ["beam", "random", "evolution"])
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
    assert len(result.test_scores) >= 3
    # The programs reported on the test split at the end (best, front) run at once (before:
    # one program's 8 calls after the other's); the start's were made during the search.
    assert model.max_in_flight == len(test) * (len(result.test_scores) - 1)


class BySplit(Runner):
    """Answers like ``inner`` after ``latency`` seconds; logs each call's split as it starts
    (test rows are numbered from 900) and counts the calls in flight."""

    def __init__(self, inner: Runner, latency: float) -> None:
        self.inner, self.model, self.latency = inner, inner.model, latency
        self.log: list[str] = []
        self.in_flight = self.max_in_flight = 0

    async def generate(self, request: LLMRequest) -> LLMResult:
        self.log.append("test" if "item 9" in request.prompt_text else "val")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.latency)
            return await self.inner.generate(request)
        finally:
            self.in_flight -= 1


def test_the_start_is_scored_on_test_in_slots_the_search_leaves_idle() -> None:
    # Before, every test-split call waited for the search's last validation call, while the
    # search left slots idle between steps (a step's last calls, the next step's proposals).
    def search() -> Search:
        ops = Mixture([DropSection(), SwapExamples(), ChangeExampleCount()])
        budget = SearchBudget(candidates=8)
        return BeamSearch(ops, width=2, depth=3, mutations_per_parent=2, budget=budget)

    test = items(12, start=900)
    model = BySplit(synthetic_model(), latency=0.003)
    with_test = asyncio.run(search().run(start_program(), val=VAL, runner=model, test=test))
    alone = asyncio.run(search().run(start_program(), val=VAL, runner=synthetic_model()))
    last_val = max(i for i, split in enumerate(model.log) if split == "val")
    early = model.log[:last_val].count("test")
    assert early >= len(test)  # at least the start's test calls went out during the search
    assert model.max_in_flight <= 32  # within the one limit (the default max_concurrency)
    # The search is the same with or without the report, and so are the start's test scores.
    assert [(c.hash, c.scores) for c in with_test.candidates] == [
        (c.hash, c.scores) for c in alone.candidates
    ]
    evaluation = asyncio.run(
        Evaluator(test, synthetic_model(), [Accuracy()]).evaluate(start_program())
    )
    assert with_test.test_scores[0] == evaluation.scores


def test_idle_calls_wait_for_the_search_calls_that_wait() -> None:
    # Test-split calls take only slots no validation call waits for: at concurrency 1 the
    # search's calls never queue behind them, so the validation calls stay one run each.
    test = items(6, start=900)
    model = BySplit(synthetic_model(), latency=0.002)
    search = BeamSearch(
        Mixture([DropSection(), SwapExamples()]),
        width=1,
        depth=2,
        mutations_per_parent=1,
        budget=SearchBudget(candidates=3),
        max_concurrency=1,
    )
    result = asyncio.run(search.run(start_program(), val=VAL, runner=model, test=test))
    assert model.max_in_flight == 1
    evaluated = len(result.candidates) * len(VAL)
    val_runs = "".join("v" if split == "val" else "t" for split in model.log).split("t")
    # While a candidate is evaluated its calls follow each other: a test call slips in only
    # between candidates (while the next is proposed), never in the middle of one.
    assert sum(len(run) for run in val_runs) == evaluated
    assert all(len(run) % len(VAL) == 0 for run in val_runs)


def test_the_starts_test_calls_go_out_before_the_first_proposal() -> None:
    # A proposal holds the event loop while it computes: the start's test calls wait for no
    # proposal, so they fill the slots the first step leaves idle while it proposes.
    model = BySplit(synthetic_model(), latency=0.003)

    class Noting(DropSection):
        async def mutate(self, program: Any, rng: Any, n: int = 1, context: Any = None) -> Any:
            model.log.append("propose")
            return await super().mutate(program, rng, n, context)

    search = BeamSearch(
        Noting(), width=1, depth=1, mutations_per_parent=1, budget=SearchBudget(candidates=2)
    )
    asyncio.run(search.run(start_program(), val=VAL, runner=model, test=items(4, start=900)))
    assert "test" in model.log[: model.log.index("propose")]
