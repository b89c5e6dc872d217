"""A search's scores, fronts and costs do not depend on the cache; every call it spends is
charged to a candidate (proposer calls included) or reported as unattributed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from mutators import ChangeExampleCount, DropSection, Mixture
from mutators.content import Paraphrase
from sammo_core.cli import main
from sammo_core.runners import Cache, CachedRunner, LLMRequest, Message, ScriptedRunner
from sammo_core.testing.chat_server import ChatServer
from sammo_core.testing.synthetic import answer, items, start_program, synthetic_model
from search import BeamSearch, SearchBudget, SearchResult

PROGRAM = """\
from sammo_core.testing.synthetic import start_program

program = start_program()
"""


def reply(body: Mapping[str, Any]) -> str:
    messages = tuple(Message(m["role"], m["content"]) for m in body["messages"])
    return answer(LLMRequest(messages=messages))


def optimize(program: Path, data: Path, url: str, out: Path, *extra: str) -> int:
    args = ["optimize", str(program), "--data", str(data), "--model", "loopback"]
    args += ["--base-url", url, "--strategy", "beam", "--budget", "16", "--width", "2"]
    args += ["--depth", "3", "--operators", "structure,examples,content", "--seed", "0"]
    args += ["--objective", "accuracy,mean_prompt_tokens", "--timeout", "5", "--out", str(out)]
    return main([*args, *extra])


def proposal(request: LLMRequest) -> str:
    return f"Answer yes or no. (v{len(request.prompt_text) % 5})"


def search_on(
    cache_dir: Path, mode: str, runners: dict[str, ScriptedRunner] | None = None
) -> SearchResult:
    """A small beam search through caches in ``cache_dir``; ``runners`` gets the task model
    and the proposer (``"task"``, ``"proposer"``), which count the calls that reached them."""
    model, writer = synthetic_model(), ScriptedRunner(default=proposal, model="p")
    if runners is not None:
        runners.update(task=model, proposer=writer)
    search = BeamSearch(
        Mixture([DropSection(), ChangeExampleCount(), Paraphrase()]),
        width=2,
        depth=2,
        mutations_per_parent=3,
        objectives=["accuracy", "mean_prompt_tokens"],
        budget=SearchBudget(candidates=12),
        seed=0,
    )
    with (
        Cache(cache_dir / "task.sqlite", mode) as task,  # type: ignore[arg-type]
        Cache(cache_dir / "proposer.sqlite", mode) as proposer,  # type: ignore[arg-type]
    ):
        return asyncio.run(
            search.run(
                start_program(),
                val=items(20),
                test=items(8, start=100),
                runner=CachedRunner(model, task),
                proposer=CachedRunner(writer, proposer),
            )
        )


def front(result: SearchResult) -> list[tuple[int, float, float]]:
    return [(c.id, c.score("accuracy"), c.score("mean_prompt_tokens")) for c in result.front]


def test_live_warm_cache_and_replay_give_the_same_search(tmp_path: Path) -> None:
    live = search_on(tmp_path, "readwrite")
    warm = search_on(tmp_path, "readwrite")
    replay = search_on(tmp_path, "replay")
    assert len(live.front) > 1 and all(tokens > 0 for _, _, tokens in front(live))
    for again in (warm, replay):
        assert front(again) == front(live)  # before: [(id, 1.0, 0.0)] from the cache
        assert [c.hash for c in again.candidates] == [c.hash for c in live.candidates]
        assert [c.scores for c in again.candidates] == [c.scores for c in live.candidates]
        assert [c.cost for c in again.candidates] == [c.cost for c in live.candidates]
        assert again.test_scores == live.test_scores
        assert again.usage.calls == 0 and again.usage.cache_hits == live.usage.calls
        assert all(c.spent_calls == 0 for c in again.candidates)


def test_candidates_are_charged_every_call_including_their_proposals(tmp_path: Path) -> None:
    runners: dict[str, ScriptedRunner] = {}
    result = search_on(tmp_path, "readwrite", runners)
    paraphrased = [c for c in result.candidates if c.operator == "Paraphrase"]
    assert paraphrased, "the search should have evaluated a paraphrase"
    evaluation = len(items(20))  # one call per validation row
    # The proposer call that made a paraphrase is charged to it (before: only its evaluation).
    assert any(c.spent_calls > evaluation for c in paraphrased)
    # Against the calls that reached the models (the test report's included): every call of
    # the task model during the search is charged to a candidate; only proposals may be left.
    task, proposer = runners["task"].calls, runners["proposer"].calls
    search_calls = task - result.test_usage.calls
    # the start, the winner and the rest of the front, each on the 8 test rows
    assert result.test_usage.calls >= 2 * 8 and result.test_usage.calls % 8 == 0
    spent = sum(c.spent_calls for c in result.candidates)
    assert spent + result.unattributed["calls"] == search_calls + proposer
    assert spent >= search_calls and 0 <= result.unattributed["calls"] <= proposer
    assert result.total_usage.calls == result.usage.calls + result.test_usage.calls


def test_optimize_from_a_cache_and_in_replay_reports_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    program, data = tmp_path / "program.py", tmp_path / "data.jsonl"
    program.write_text(PROGRAM)
    items(48).save(data)
    cache = ("--cache", str(tmp_path / "cache.sqlite"))
    runs = [tmp_path / name for name in ("live", "warm", "replay")]
    with ChatServer(reply=reply) as server:
        assert optimize(program, data, server.base_url, runs[0], *cache) == 0
        requests = server.stats().completions
        assert optimize(program, data, server.base_url, runs[1], *cache) == 0
        assert optimize(program, data, server.base_url, runs[2], *cache, "--replay") == 0
        assert server.stats().completions == requests  # the cache answered everything
    report = " ".join(capsys.readouterr().out.split())
    assert "test report (outside the budget)" in report
    live, warm, replay = (json.loads((run / "result.json").read_text()) for run in runs)
    # Every request the server saw is in the run's total usage, the test report included.
    assert live["total_usage"]["calls"] == requests
    assert live["test_usage"]["calls"] > 0
    assert live["usage"]["calls"] + live["test_usage"]["calls"] == requests
    trace = [json.loads(line) for line in (runs[0] / "trace.jsonl").read_text().splitlines()]
    assert any(c["operator"] == "Paraphrase" for c in trace)
    # Each candidate of the live run paid its own evaluation (no two send the same prompts).
    assert all(c["spent"]["calls"] >= 1 for c in trace if c.get("same_as") is None)

    def strip(candidate: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in candidate.items() if k != "spent"}  # what this run paid

    for again in (warm, replay):
        for key in ("start", "best", "front"):
            rows = again[key] if key == "front" else [again[key]]
            want = live[key] if key == "front" else [live[key]]
            assert [strip(c) for c in rows] == [strip(c) for c in want]
        assert again["best"]["cost_per_input"]["prompt_tokens"] > 0
        assert again["total_usage"]["calls"] == 0
