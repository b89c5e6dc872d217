"""Budgets that hold: completion caps, durable usage across an interrupted and resumed run,
a clear stop when the start program is unaffordable, and a candidates budget that means it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from mutators.examples import ChangeExampleCount, SwapExamples
from mutators.mixture import Mixture
from mutators.structure import DropSection, ReorderSections
from sammo_core.cli import main
from sammo_core.errors import BudgetExceededError
from sammo_core.runners import LLMRequest, Message, ScriptedRunner
from sammo_core.runners.accounting import UsageJournal
from sammo_core.testing.chat_server import ChatServer
from sammo_core.testing.synthetic import answer, items, start_program, synthetic_model
from search import BeamSearch, RegularizedEvolution, SearchBudget, SearchResult
from search.base import JOURNAL

PROGRAM = """\
from sammo_core.testing.synthetic import start_program

program = start_program()
OBJECTIVE = "accuracy"
"""
TEST_ITEM = re.compile(r"item 90\d\d\b")  # the --test-data rows: items 9000..


def _ops() -> Mixture:
    return Mixture([DropSection(), ChangeExampleCount(), SwapExamples(), ReorderSections()])


def _as_long_as_allowed(request: LLMRequest) -> str:
    """A model that always talks until its completion cap stops it."""
    return " ".join(["yes"] * (request.max_tokens or 5000))


# -- completion caps --------------------------------------------------------------------------


@pytest.mark.parametrize("tokens", [50, 2000, 20000])
def test_a_token_budget_holds_against_a_model_that_answers_as_long_as_allowed(
    tokens: int, tmp_path: Path
) -> None:
    # Before: no call carried max_tokens and the reservation counted words, so a search under
    # Budget(tokens=50) let through a call that spent 203 tokens.
    model = ScriptedRunner(default=_as_long_as_allowed, model="talkative")
    search = BeamSearch(_ops(), width=2, depth=2, budget=SearchBudget(tokens=tokens), seed=0)
    run = search.run(start_program(), val=items(8), train=items(8, start=200), runner=model)
    if tokens == 50:  # not even one call fits: the search says what the start program needs
        with pytest.raises(BudgetExceededError, match="scoring the start program"):
            asyncio.run(run)
        assert model.calls == 0
        return
    result = asyncio.run(run)
    assert result.usage.total_tokens <= tokens
    # every task call was capped at the default: the longest gold output ("yes") + 16
    assert {r.max_tokens for r in model.requests} == {19}
    assert result.usage.completion_tokens == 19 * result.usage.calls > 0


def test_max_tokens_overrides_the_default_cap_and_a_program_cap_wins() -> None:
    model = synthetic_model()
    search = BeamSearch(_ops(), width=1, depth=1, budget=SearchBudget(candidates=2), max_tokens=7)
    asyncio.run(search.run(start_program(), val=items(4), runner=model))
    assert {r.max_tokens for r in model.requests} == {7}

    capped = start_program().clone(override={"child.max_tokens": 3})
    model = synthetic_model()
    asyncio.run(search.run(capped, val=items(4), runner=model))
    assert {r.max_tokens for r in model.requests} == {3}


def test_proposer_calls_carry_their_own_cap() -> None:
    from mutators.base import PROPOSAL_MAX_TOKENS, MutationContext

    proposer = ScriptedRunner(default="A new instruction.")
    context = MutationContext(runner=proposer)
    assert asyncio.run(context.ask("Paraphrase", "Rewrite: x", seed=0)) == "A new instruction."
    assert proposer.requests[0].max_tokens == PROPOSAL_MAX_TOKENS


# -- the start program ------------------------------------------------------------------------


def test_a_budget_below_the_start_program_stops_with_what_it_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: ValueError: max() arg is an empty sequence, from inside checkpoint().
    search = BeamSearch(_ops(), budget=SearchBudget(calls=50), seed=0)
    with pytest.raises(BudgetExceededError) as info:
        asyncio.run(search.run(start_program(), val=items(300), runner=synthetic_model()))
    message = str(info.value)
    assert "scoring the start program" in message
    assert "takes 300 calls, one per 1 of the 300 validation rows" in message
    assert "50 calls" in message and "Budget(calls=50)" in message
    assert "--budget" in message

    # On the command line: a one-line error naming the flags, exit status 1.
    program = tmp_path / "program.py"
    program.write_text(PROGRAM)
    data = tmp_path / "data.jsonl"
    items(40).save(data)
    with ChatServer(reply=_reply) as server:
        code = main(
            [
                "optimize",
                str(program),
                "--data",
                str(data),
                "--model",
                "loopback",
                "--base-url",
                server.base_url,
                "--budget",
                "calls=5",
                "--out",
                str(tmp_path / "run"),
            ]
        )
    err = capsys.readouterr().err
    assert code == 1
    assert "takes 10 calls, one per 1 of the 10 validation rows" in err
    assert "max() arg" not in err and "Traceback" not in err


# -- candidates budget vs cycles ----------------------------------------------------------------


def test_evolution_spends_a_candidates_budget_and_names_what_stopped_it() -> None:
    # Before: --budget 48 stopped at 28 candidates (8 + the default 20 cycles), "on steps".
    def evolution(**kwargs: Any) -> RegularizedEvolution:
        return RegularizedEvolution(_ops(), population_size=8, seed=1, **kwargs)

    result = _run(evolution(budget=SearchBudget(candidates=48)))
    assert len(result.candidates) == 48
    assert result.stopped == "candidates budget"

    limited = _run(evolution(budget=SearchBudget(candidates=48), cycles=5))
    assert len(limited.candidates) == 8 + 5
    assert limited.stopped == "cycles (5)"


def test_evolution_stops_when_it_converges() -> None:
    # One operator with few children: the space runs dry long before 500 candidates.
    search = RegularizedEvolution(
        Mixture([DropSection()]), population_size=3, budget=SearchBudget(candidates=500)
    )
    result = _run(search)
    assert len(result.candidates) < 500
    assert result.stopped == "converged: no new candidate in 6 cycles"


def _run(search: Any) -> SearchResult:
    return asyncio.run(  # type: ignore[no-any-return]
        search.run(start_program(), val=items(8), runner=synthetic_model())
    )


# -- interrupted and resumed runs never exceed their budget at the server ------------------------


class _Counting:
    """The loopback server's reply function, counting the requests that reach it."""

    def __init__(self) -> None:
        self.search = 0
        self.test = 0
        self._lock = threading.Lock()

    def __call__(self, body: Mapping[str, Any]) -> str:
        text = _reply(body)
        with self._lock:
            if any(TEST_ITEM.search(str(m["content"])) for m in body["messages"]):
                self.test += 1
            else:
                self.search += 1
        return text


def _reply(body: Mapping[str, Any]) -> str:
    messages = tuple(Message(m["role"], m["content"]) for m in body["messages"])
    return answer(LLMRequest(messages=messages))


def _optimize(program: Path, data: Path, test: Path, url: str, out: Path, *extra: str) -> Any:
    args = [
        *("optimize", str(program), "--data", str(data), "--test-data", str(test)),
        *("--model", "loopback", "--base-url", url, "--strategy", "beam"),
        *("--budget", f"candidates=40,calls={CALLS}", "--width", "3", "--depth", "4"),
        *("--operators", "structure,examples", "--out", str(out), "--timeout", "5", *extra),
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "sammo_core.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


CALLS = 150  # 20 validation rows a candidate: the start, then 6 children at most


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_and_resumed_run_never_exceeds_its_call_budget_at_the_server(
    how: signal.Signals, tmp_path: Path
) -> None:
    # Before: after SIGINT and --resume without a cache, the calls made since the last
    # checkpoint were neither counted nor charged, and the server saw more than the budget.
    program, data, test = tmp_path / "program.py", tmp_path / "data.jsonl", tmp_path / "t.jsonl"
    program.write_text(PROGRAM)
    items(60).save(data)  # 40 train, 20 validation rows
    items(10, start=9000).save(test)
    out = tmp_path / "run"
    counting = _Counting()
    with ChatServer(reply=counting, latency=0.02) as server:
        proc = _optimize(program, data, test, server.base_url, out)
        deadline = time.monotonic() + 120
        try:  # interrupt half way through the first step, well after the start's checkpoint
            while counting.search < 70 and time.monotonic() < deadline:
                time.sleep(0.01)
            os.kill(proc.pid, how)
        finally:
            proc.wait(60)
        assert not (out / "result.json").exists(), "the run was interrupted before finishing"
        interrupted = counting.search
        assert 70 <= interrupted < CALLS

        resumed = _optimize(program, data, test, server.base_url, out, "--resume")
        assert resumed.wait(180) == 0

    result = json.loads((out / "result.json").read_text())
    assert counting.search <= CALLS  # what the server saw, both sessions together
    # usage is truthful: it counts every request the server saw (and any the interruption
    # cut before it reached the server, which may have been billed)
    assert counting.search <= result["usage"]["calls"] <= CALLS
    assert result["stopped"].startswith("budget: calls budget exhausted")
    with UsageJournal(out / JOURNAL, tag=_tag(out)) as journal:
        assert journal.usage.calls == result["usage"]["calls"]


def _tag(out: Path) -> str:
    return str(json.loads((out / "checkpoint.json").read_text())["fingerprint"])
