"""Racing: candidates scored on a few rows first go on only while they can win; a program
whose requests equal an earlier one's is not scored again."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pyglove as pg
import pytest

from benchmarks.harness.racing_compare import _prompt_of, start_program
from mutators.examples import ChangeExampleCount, ReorderExamples, SwapExamples
from mutators.format import ChangePrefixes
from mutators.mixture import Mixture
from mutators.structure import DropParagraph, DropSection, ReorderSections
from sammo_core import GenerateText, InputData, MetaPrompt, Output
from sammo_core.cli import main
from sammo_core.errors import ConfigError
from sammo_core.objectives import Objective, Score, paired_difference
from sammo_core.results import ResultTable
from sammo_core.runners import LLMRequest, LLMResult, Runner
from sammo_core.testing.chat_server import ChatServer
from sammo_core.testing.landscape import landscape_model, true_accuracy
from sammo_core.testing.synthetic import items
from search import BeamSearch, EnumerativeSearch, RegularizedEvolution, Search, SearchBudget
from search.racing import Racing, in_race_order
from search.result import SearchResult
from tests.search.test_cli_optimize import PROGRAM, optimize_args, reply

VAL, TEST = items(48), items(40, start=10_000)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    program, data = tmp_path / "program.py", tmp_path / "data.jsonl"
    program.write_text(PROGRAM)
    items(60).save(data)
    return program, data


def ops() -> Mixture:
    return Mixture(
        [
            DropSection(),
            DropParagraph(),
            ReorderSections(),
            SwapExamples(),
            ChangeExampleCount(),
            ReorderExamples(),
            ChangePrefixes(),
        ]
    )


def make(
    kind: str, racing: Racing | None, calls: int = 1500, seed: int = 0, steps: int | None = None
) -> Search:
    budget = SearchBudget(calls=calls)
    if kind == "beam":
        depth = steps or 30
        return BeamSearch(ops(), width=3, depth=depth, budget=budget, seed=seed, racing=racing)
    return RegularizedEvolution(
        ops(),
        population_size=4,
        tournament_size=2,
        cycles=steps,
        budget=budget,
        seed=seed,
        racing=racing,
    )


def go(
    search: Search, runner: Runner | None = None, out: Path | None = None, **kw: object
) -> SearchResult:
    return asyncio.run(
        search.run(
            start_program(),
            val=VAL,
            test=TEST,
            runner=runner or landscape_model(),
            out_dir=out,
            **kw,  # type: ignore[arg-type]
        )
    )


def trace(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "trace.jsonl").read_text().splitlines()]


def test_off_is_the_search_as_it_was(tmp_path: Path) -> None:
    plain = go(make("beam", None, calls=600), out=tmp_path / "a")
    off = go(make("beam", Racing("off"), calls=600), out=tmp_path / "b")
    assert (tmp_path / "a" / "trace.jsonl").read_text() == (
        tmp_path / "b" / "trace.jsonl"
    ).read_text()
    assert all("race" not in row for row in trace(tmp_path / "a"))
    assert all(c.scores["accuracy"].n == len(VAL) for c in off.candidates)
    assert plain.best.hash == off.best.hash


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paired_racing_stops_only_candidates_the_incumbent_beats(seed: int) -> None:
    racing = Racing("paired", rungs=(12, 24))
    result = go(make("beam", racing, seed=seed))
    order = racing.order(len(VAL), seed)
    stopped = [c for c in result.candidates if c.eliminated]
    assert stopped, "the landscape has candidates clearly worse than the start"
    wrongly = 0
    for c in stopped:
        assert c.rows in (12, 24) and c.scores["accuracy"].n == c.rows
        # The incumbent: the best candidate scored in full among those before c's step.
        before = [x for x in result.candidates if x.step < c.step and not x.eliminated]
        incumbent = max(before, key=lambda x: (x.score("accuracy"), -x.id))
        mine = in_race_order(c.scores["accuracy"].per_item or (), order, c.rows or 0)
        theirs = in_race_order(incumbent.scores["accuracy"].per_item or (), order, len(VAL))
        _, _, high = paired_difference(mine, theirs[: c.rows], seed=c.rows or 0)
        assert high < 0, "stopped only once its paired interval lies below 0"
        # A full evaluation would have ranked it below the incumbent: its true accuracy is
        # below (the landscape knows every prompt's).
        wrongly += true_accuracy(_prompt_of(c.program)) > true_accuracy(
            _prompt_of(incumbent.program)
        )
    assert wrongly <= max(1, math.floor(0.05 * len(stopped)))
    # Winners are scored on every row.
    assert not result.best.eliminated and result.best.scores["accuracy"].n == len(VAL)
    assert (
        result.best.id
        == max(
            (c for c in result.candidates if not c.eliminated),
            key=lambda c: (c.score("accuracy"), -c.id),
        ).id
    )


def test_halving_keeps_the_top_share_of_each_rung() -> None:
    racing = Racing("halving", rungs=(12, 24), keep=1 / 3)
    result = go(make("evolution", racing, calls=1200))
    order = racing.order(len(VAL), 0)
    # Each cycle's child races those of the cycles before (the first population, step 0,
    # is made in several rounds).
    stopped = [c for c in result.candidates if c.eliminated and c.step >= 1]
    assert stopped
    for c in stopped:
        rows = c.rows or 0
        mine = sum(in_race_order(c.scores["accuracy"].per_item or (), order, rows)) / rows
        rivals = [
            sum(
                in_race_order(x.scores["accuracy"].per_item or (), order, x.rows or len(VAL))[:rows]
            )
            / rows
            for x in result.candidates
            if x.step < c.step and (x.rows or len(VAL)) >= rows
        ]
        places = math.ceil((len(rivals) + 1) / 3)
        assert sum(r > mine for r in rivals) >= places, f"#{c.id} was in the top third"


@pytest.mark.parametrize("mode", ["paired", "halving"])
def test_racing_turns_the_same_calls_into_more_candidates(mode: str) -> None:
    off = go(make("beam", Racing("off"), calls=1200))
    raced = go(make("beam", Racing(mode), calls=1200))
    assert off.usage.calls <= 1200 and raced.usage.calls <= 1200
    assert len(raced.candidates) > len(off.candidates)
    per_full = len(VAL)
    assert off.usage.calls >= per_full * (len(off.candidates) - 1)
    assert raced.usage.calls < per_full * len(raced.candidates)


class Crash(Exception):
    """Stands for the process dying."""


class CrashAfter(Runner):
    def __init__(self, inner: Runner, calls: int) -> None:
        self.inner, self.left, self.model = inner, calls, inner.model

    async def generate(self, request: LLMRequest) -> LLMResult:
        if self.left <= 0:
            raise Crash("killed")
        self.left -= 1
        return await self.inner.generate(request)


@pytest.mark.parametrize("kind", ["beam", "evolution"])
@pytest.mark.parametrize("fraction", [0.3, 0.8])
def test_kill_in_a_rung_then_resume_gives_the_uninterrupted_result(
    kind: str, fraction: float, tmp_path: Path
) -> None:
    racing = Racing("paired", rungs=(12, 24))
    steps = 4 if kind == "beam" else 12  # the end: steps, not the budget (a resume redoes work)
    whole = go(make(kind, racing, calls=5000, steps=steps), out=tmp_path / "whole")
    assert whole.stopped.startswith(("depth", "cycles"))
    with pytest.raises(Crash):
        go(
            make(kind, racing, calls=5000, steps=steps),
            CrashAfter(landscape_model(), int(whole.usage.calls * fraction)),
            tmp_path / "crashed",
        )
    resumed = go(make(kind, racing, calls=5000, steps=steps), out=tmp_path / "crashed", resume=True)
    assert [c.summary()["race"] for c in resumed.candidates[1:]] == [
        c.summary()["race"] for c in whole.candidates[1:]
    ]
    assert [c.hash for c in resumed.candidates] == [c.hash for c in whole.candidates]
    assert resumed.best.id == whole.best.id and resumed.test_scores == whole.test_scores


def test_racing_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="racing mode must be one of"):
        Racing("fast")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="rungs must increase"):
        Racing("paired", rungs=(20, 10))
    with pytest.raises(ConfigError, match="keep must lie strictly between 0 and 1"):
        Racing("halving", keep=1.0)
    # A total is refused before the start program costs a call ...
    with pytest.raises(ConfigError, match="racing needs a primary objective scored row by row"):
        BeamSearch(
            ops(), budget=SearchBudget(candidates=6), objectives=["calls"], racing=Racing("paired")
        )

    # ... and an objective that does not say whether it scores rows is checked once it scored.
    class Longest(Objective):
        name, direction = "longest", "maximize"

        def score(self, results: ResultTable) -> Score:
            return Score(self.name, max(len(r.raw_output) for r in results), n=len(results))

    search = BeamSearch(
        ops(), budget=SearchBudget(candidates=6), objectives=[Longest()], racing=Racing("paired")
    )
    with pytest.raises(ConfigError, match="racing needs a primary objective scored row by row"):
        go(search)


def _headingless(fmt: str) -> Output:
    return Output(
        GenerateText(MetaPrompt(["Answer yes or no.", InputData()], section_format=fmt)),
        parser="first_line",
    )


def test_programs_that_send_the_same_requests_are_scored_once(tmp_path: Path) -> None:
    space = Output(
        GenerateText(
            MetaPrompt(
                ["Answer yes or no.", InputData()],
                section_format=pg.oneof(["plain", "markdown", "xml"]),
            )
        ),
        parser="first_line",
    )
    model = landscape_model()
    result = asyncio.run(
        EnumerativeSearch(budget=SearchBudget(candidates=10)).run(
            space, val=VAL, runner=model, out_dir=tmp_path
        )
    )
    assert len(result.candidates) == 3
    first, *others = result.candidates
    assert model.calls == len(VAL), "one program's calls: the others render the same text"
    for c in others:
        assert c.same_as == first.id and c.spent_calls == 0
        assert c.scores == first.scores and c.cost == first.cost
    assert [row.get("same_as") for row in trace(tmp_path)] == [None, 0, 0]


def test_cli_races_candidates(files: tuple[Path, Path], tmp_path: Path) -> None:
    program, data = files
    out = tmp_path / "raced"
    with ChatServer(reply=reply) as server:
        racing = ("--racing", "halving", "--rungs", "6")
        assert main(optimize_args(program, data, server.base_url, out, *racing)) == 0
    rows = trace(out)
    n_val = rows[0]["race"]["rows"]  # type: ignore[index]
    assert n_val == rows[0]["scores"]["accuracy"]["n"] > 6  # type: ignore[index]
    assert {row["race"]["rows"] for row in rows[1:]} <= {6, n_val}  # type: ignore[index]
    assert any(row["race"]["eliminated"] for row in rows[1:])  # type: ignore[index]
    assert json.loads((out / "result.json").read_text())["params"]["racing"] == "halving"


def test_cli_refuses_bad_rungs(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    program, data = files
    with pytest.raises(SystemExit):
        main(optimize_args(program, data, "http://127.0.0.1:9", tmp_path / "x", "--rungs", "9,x"))
    err = capsys.readouterr().err
    assert "--rungs" in err and "increasing row counts, e.g. 10,20; got '9,x'" in err


def test_a_raced_search_replays_from_a_cache_with_the_same_scores(tmp_path: Path) -> None:
    from sammo_core.runners.cache import Cache, CachedRunner

    racing = Racing("halving", rungs=(12, 24))
    first_model = landscape_model()
    cache = Cache(tmp_path / "cache.sqlite")
    first = go(make("beam", racing, steps=3, calls=5000), CachedRunner(first_model, cache))
    again_model = landscape_model()
    again = go(make("beam", racing, steps=3, calls=5000), CachedRunner(again_model, cache))
    cache.close()
    assert first_model.calls > 0 and again_model.calls == 0
    assert [c.scores for c in again.candidates] == [c.scores for c in first.candidates]
    assert [c.summary()["race"] for c in again.candidates] == [
        c.summary()["race"] for c in first.candidates
    ]
    # What each candidate costs per input is the program's, cache or not; what it spent is 0.
    assert [c.cost for c in again.candidates] == [c.cost for c in first.candidates]
    assert again.usage.calls == 0 and again.usage.cache_hits == first.usage.calls
