"""Usage accounting, budgets and prices."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import orjson
import pytest

from sammo_core.errors import BudgetExceededError, CacheMissError, ConfigError, RunnerError
from sammo_core.runners.accounting import (
    AccountingRunner,
    Budget,
    Ledger,
    Reservation,
    Usage,
    UsageJournal,
    prompt_token_bound,
)
from sammo_core.runners.base import LLMRequest, LLMResult, Runner
from sammo_core.runners.cache import Cache, CachedRunner
from sammo_core.runners.pricing import PRICES, estimate_cost, price_for
from sammo_core.runners.scripted import ScriptedRunner
from sammo_core.tokens import count_tokens


def _requests(n: int) -> list[LLMRequest]:
    return [LLMRequest.from_prompt(f"Label review number {i}: it works") for i in range(n)]


def _outcomes(runner: Runner, requests: list[LLMRequest]) -> list[LLMResult | BaseException]:
    async def run() -> list[LLMResult | BaseException]:
        return await asyncio.gather(*(runner.generate(r) for r in requests), return_exceptions=True)

    return asyncio.run(run())


class PricedRunner(Runner):
    """Reports its own exact cost, as a hosted runner with billing data would."""

    model = "house-model"

    def __init__(self, cost: float) -> None:
        self.cost = cost
        self.calls = 0

    async def generate(self, request: LLMRequest) -> LLMResult:
        self.calls += 1
        return LLMResult("ok", 10, 1, model=self.model, cost_usd=self.cost)


def test_counts_calls_tokens_and_dollars_exactly() -> None:
    inner = ScriptedRunner(default="positive label", model="gpt-4o-mini")
    runner = AccountingRunner(inner)
    results = asyncio.run(runner.generate_many(_requests(7)))
    usage = runner.usage
    assert usage.calls == inner.calls == 7
    assert usage.cache_hits == 0
    assert usage.prompt_tokens == sum(r.prompt_tokens for r in results) == 7 * 7
    assert usage.completion_tokens == sum(r.completion_tokens for r in results) == 7 * 2
    expected = sum(
        estimate_cost("gpt-4o-mini", r.prompt_tokens, r.completion_tokens) or 0 for r in results
    )
    assert usage.usd == pytest.approx(expected)
    assert usage.usd == pytest.approx(7 * (7 * 0.15 + 2 * 0.60) / 1e6)
    assert (usage.saved_prompt_tokens, usage.saved_completion_tokens) == (0, 0)
    assert runner.model == "gpt-4o-mini"


def test_a_reported_cost_wins_over_the_price_table() -> None:
    runner = AccountingRunner(PricedRunner(cost=0.25))
    asyncio.run(runner.generate_many(_requests(4)))
    assert runner.usage.usd == pytest.approx(1.0)


def test_unpriced_models_cost_nothing() -> None:
    runner = AccountingRunner(ScriptedRunner(default="x", model="local:SmolLM2"))
    asyncio.run(runner.generate_many(_requests(3)))
    assert (runner.usage.calls, runner.usage.usd) == (3, 0.0)


def test_cache_hits_count_as_saved_tokens_not_spent(tmp_path: Path) -> None:
    inner = ScriptedRunner(default="positive label", model="gpt-4o")
    with Cache(tmp_path / "c.sqlite") as cache:
        runner = AccountingRunner(CachedRunner(inner, cache))
        asyncio.run(runner.generate_many(_requests(5)))
        spent = runner.usage
        asyncio.run(runner.generate_many(_requests(5)))
        # A new row and a duplicate in flight: one call, one deduplicated hit.
        asyncio.run(runner.generate_many(_requests(6)[5:] * 2))
    usage = runner.usage
    assert inner.calls == 6
    assert usage.calls == 6
    assert usage.cache_hits == 6
    assert usage.saved_prompt_tokens == spent.prompt_tokens + 7
    assert usage.saved_completion_tokens == spent.completion_tokens + 2
    assert usage.prompt_tokens == spent.prompt_tokens + 7
    assert usage.usd == pytest.approx(spent.usd * 6 / 5)
    assert "6 cache hits" in usage.summary()


def test_call_budget_stops_exactly_at_the_limit_under_concurrency() -> None:
    inner = ScriptedRunner(default="ok", model="m", latency=0.02)
    runner = AccountingRunner(inner, Budget(calls=5))
    outcomes = _outcomes(runner, _requests(20))
    done = [o for o in outcomes if isinstance(o, LLMResult)]
    refused = [o for o in outcomes if isinstance(o, BudgetExceededError)]
    assert (len(done), len(refused)) == (5, 15)
    assert inner.calls == 5
    assert runner.usage.calls == 5
    assert runner.usage.prompt_tokens == sum(r.prompt_tokens for r in done)
    message = str(refused[0])
    assert "calls budget exhausted" in message
    assert "5 allowed" in message
    assert "work done so far is kept" in message
    # Later calls are refused too; the usage stays as it was.
    with pytest.raises(BudgetExceededError, match="5 used"):
        asyncio.run(runner.generate(_requests(1)[0]))
    assert runner.usage.calls == 5


def test_cache_hits_pass_an_exhausted_call_budget(tmp_path: Path) -> None:
    inner = ScriptedRunner(default="ok", model="m")
    with Cache(tmp_path / "c.sqlite") as cache:
        runner = AccountingRunner(CachedRunner(inner, cache), Budget(calls=3))
        asyncio.run(runner.generate_many(_requests(3)))
        results = asyncio.run(runner.generate_many(_requests(3)))
        assert all(r.cached for r in results)
        with pytest.raises(BudgetExceededError):
            asyncio.run(runner.generate(_requests(4)[3]))
    assert (runner.usage.calls, runner.usage.cache_hits, inner.calls) == (3, 3, 3)


def test_token_budget_counts_the_reservation() -> None:
    # Each call reserves its prompt bound (31 bytes + 8 + 64 = 103) + max_tokens 4 = 107 tokens
    # and spends 7 + 2 = 9.
    inner = ScriptedRunner(default="ok label", model="m")
    runner = AccountingRunner(inner, Budget(tokens=130))
    requests = [dataclasses.replace(r, max_tokens=4) for r in _requests(10)]
    assert runner.reservation(requests[0]).tokens == 107
    for request in requests[:3]:
        asyncio.run(runner.generate(request))
    assert runner.usage.total_tokens == 27
    with pytest.raises(BudgetExceededError, match=r"tokens budget exhausted: 27 used \+ 107 more"):
        asyncio.run(runner.generate(requests[3]))
    assert inner.calls == 3


def _as_long_as_allowed(request: LLMRequest) -> str:
    """A model that always talks until its completion cap stops it."""
    return " ".join(["word"] * (request.max_tokens or 5000))


@pytest.mark.parametrize("limit", [50, 120, 400, 1000])
def test_a_token_budget_holds_against_answers_as_long_as_allowed(limit: int) -> None:
    # Before, a call under Budget(tokens=50) spent 203 tokens: the reservation counted words
    # and the answer had no cap.
    inner = ScriptedRunner(default=_as_long_as_allowed, model="m", latency=0.01)
    runner = AccountingRunner(inner, Budget(tokens=limit), default_max_tokens=30)
    outcomes = _outcomes(runner, _requests(12))
    assert runner.usage.total_tokens <= limit
    done = [o for o in outcomes if isinstance(o, LLMResult)]
    assert all(r.completion_tokens == 30 for r in done)
    refused = [o for o in outcomes if isinstance(o, BudgetExceededError)]
    assert len(done) + len(refused) == 12
    # A call is refused only when the tokens spent leave no room for its reservation (133 or
    # 134 tokens), never for room that calls in flight held and then gave back.
    assert (not refused) or runner.usage.total_tokens + 133 > limit
    assert bool(done) == (limit >= 134)


def test_an_uncapped_request_cannot_run_under_a_token_budget() -> None:
    inner = ScriptedRunner(default=_as_long_as_allowed, model="m")
    runner = AccountingRunner(inner, Budget(tokens=1000))
    with pytest.raises(ConfigError, match=r"without max_tokens .*Budget\(tokens=1000\)"):
        asyncio.run(runner.generate(_requests(1)[0]))
    assert inner.calls == 0
    capped = AccountingRunner(inner, ledger=runner.ledger, default_max_tokens=12)
    assert asyncio.run(capped.generate(_requests(1)[0])).completion_tokens == 12
    assert inner.requests[0].max_tokens == 12


def test_prompt_token_bound_is_never_below_the_word_count() -> None:
    texts = ["", "a", "Hello, world!", "naïve café — déjà vu", "x" * 1000, "1 + 1 = 2 ?!"]
    for text in texts:
        request = LLMRequest.from_prompt(text or " ", system="Be brief.")
        assert prompt_token_bound(request) >= count_tokens(request.prompt_text) + 2 * 8 + 64
        assert prompt_token_bound(request) >= len(request.prompt_text.encode("utf-8"))


def test_dollar_budget_reserves_the_price_of_the_bound() -> None:
    # gpt-4o: $2.50 per 1M input tokens, $10 per 1M output tokens. A 1,000-word prompt of 4,999
    # bytes reserves 5,071 prompt tokens and max_tokens 1; it spends 1,000 and 1.
    prompt = " ".join(["word"] * 1000)
    assert count_tokens(prompt) == 1000
    inner = ScriptedRunner(default="ok", model="gpt-4o")
    runner = AccountingRunner(inner, Budget(usd=0.03))
    requests = [LLMRequest.from_prompt(prompt, sample_index=i, max_tokens=1) for i in range(9)]
    reserved = (5071 * 2.5 + 1 * 10.0) / 1e6
    assert runner.reservation(requests[0]).usd == pytest.approx(reserved)
    outcomes = _outcomes(runner, requests)
    spent = (1000 * 2.5 + 1 * 10.0) / 1e6
    affordable = next(k for k in range(20) if k * spent + reserved > 0.03)
    assert sum(isinstance(o, LLMResult) for o in outcomes) == affordable == 7
    assert isinstance(outcomes[-1], BudgetExceededError)
    assert "usd budget exhausted" in str(outcomes[-1])
    assert runner.usage.usd == pytest.approx(7 * spent)
    with pytest.raises(ConfigError, match="without max_tokens"):
        asyncio.run(runner.generate(LLMRequest.from_prompt(prompt)))


def test_a_failed_call_is_charged_its_reservation() -> None:
    # The model may have answered (and billed) a call whose answer never came back.
    inner = ScriptedRunner(rules={"ok": "fine"}, model="m")  # other prompts raise
    runner = AccountingRunner(inner, Budget(calls=2), default_max_tokens=5)
    request = LLMRequest.from_prompt("fails")
    with pytest.raises(RunnerError):
        asyncio.run(runner.generate(request))
    bound = prompt_token_bound(request)
    assert runner.usage == Usage(
        calls=1, prompt_tokens=bound, completion_tokens=5, wall_seconds=runner.usage.wall_seconds
    )
    assert asyncio.run(runner.generate(LLMRequest.from_prompt("ok"))).text == "fine"
    assert runner.usage.calls == 2


def test_a_call_refused_before_sending_counts_nothing(tmp_path: Path) -> None:
    inner = ScriptedRunner(default="x", model="m")
    Cache(tmp_path / "c.sqlite").close()
    with Cache(tmp_path / "c.sqlite", mode="replay") as cache:
        runner = AccountingRunner(CachedRunner(inner, cache), Budget(calls=2))
        with pytest.raises(CacheMissError):
            asyncio.run(runner.generate(LLMRequest.from_prompt("not cached")))
    assert (runner.usage.calls, inner.calls) == (0, 0)


def test_a_cancelled_call_is_charged_and_frees_no_room() -> None:
    inner = ScriptedRunner(default="late", model="m", latency=5)
    runner = AccountingRunner(inner, Budget(calls=1))

    async def interrupted() -> None:
        task = asyncio.ensure_future(runner.generate(LLMRequest.from_prompt("Hi")))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(interrupted())
    assert runner.usage.calls == 1
    with pytest.raises(BudgetExceededError, match="1 used"):
        asyncio.run(runner.generate(LLMRequest.from_prompt("again")))


def test_a_journal_keeps_every_call_across_sessions_and_kills(tmp_path: Path) -> None:
    path = tmp_path / "usage.jsonl"
    inner = ScriptedRunner(default="ok", model="m")
    with UsageJournal(path, tag="run") as journal:
        runner = AccountingRunner(inner, ledger=Ledger(Budget(calls=3), journal=journal))
        asyncio.run(runner.generate_many(_requests(2)))
        journal.sent(99, Reservation(100, 7))  # a call in flight when the process died
    with path.open("ab") as f:
        f.write(b'{"kind": "sent", "id": 100, "prom')  # torn while being written: never sent
    with UsageJournal(path, tag="run") as journal:
        assert (journal.usage.calls, journal.usage.completion_tokens) == (3, 2 + 7)
        runner = AccountingRunner(inner, ledger=Ledger(Budget(calls=3), journal=journal))
        with pytest.raises(BudgetExceededError, match="3 used"):
            asyncio.run(runner.generate(_requests(1)[0]))
    assert inner.calls == 2
    with pytest.raises(ConfigError, match="belongs to run 'run', not 'other'"):
        UsageJournal(path, tag="other")


class ThreeCalls(ScriptedRunner):
    """Answers each request with three calls to its model, as a runner that scores labels one
    request at a time does."""

    def planned_calls(self, request: LLMRequest) -> tuple[LLMRequest, ...]:
        return (dataclasses.replace(request, max_tokens=1),) * 3

    async def generate(self, request: LLMRequest) -> LLMResult:
        result = await super().generate(request)
        return dataclasses.replace(result, calls=3)


def test_a_request_that_makes_several_calls_reserves_and_counts_them_all(tmp_path: Path) -> None:
    request = LLMRequest.from_prompt("Label it", max_tokens=50)
    runner = AccountingRunner(ThreeCalls(default="yes"), Budget(calls=7))
    reservation = runner.reservation(request)
    assert (reservation.calls, reservation.completion_tokens) == (3, 3)
    assert reservation.prompt_tokens == 3 * prompt_token_bound(request)
    outcomes = _outcomes(runner, [request] * 3)
    assert [isinstance(o, BudgetExceededError) for o in outcomes] == [False, False, True]
    assert runner.usage.calls == 6
    path = tmp_path / "usage.jsonl"
    with UsageJournal(path) as journal:
        journal.sent(0, reservation)  # killed with the request in flight
    with UsageJournal(path) as again:
        assert again.usage.calls == 3


def test_wall_seconds_is_busy_time_not_the_sum_of_calls() -> None:
    runner = AccountingRunner(ScriptedRunner(default="ok", latency=0.05))
    asyncio.run(runner.generate_many(_requests(8)))
    assert 0.04 <= runner.usage.wall_seconds < 0.3  # 8 calls of 0.05 s overlapped


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"calls": 0}, "Budget(calls=...) must be a positive int or None; got 0"),
        ({"calls": -3}, "got -3"),
        ({"calls": 1.5}, "got 1.5"),
        ({"calls": True}, "got True"),
        ({"tokens": 0}, "Budget(tokens=...)"),
        ({"usd": 0}, "Budget(usd=...) must be a positive number or None; got 0"),
        ({"usd": -0.5}, "got -0.5"),
        ({"usd": float("nan")}, "got nan"),
    ],
)
def test_budget_rejects_bad_limits(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Budget(**kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_budget_is_a_frozen_value() -> None:
    budget = Budget(calls=10, usd=2)
    assert budget == Budget(calls=10, usd=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        budget.calls = 11  # type: ignore[misc]


def test_usage_adds_serializes_and_summarizes() -> None:
    a = Usage(calls=2, cache_hits=1, prompt_tokens=1200, completion_tokens=30, usd=0.5)
    b = Usage(calls=1, saved_prompt_tokens=40, saved_completion_tokens=2, wall_seconds=1.25)
    total = a + b
    assert total == Usage(3, 1, 1200, 30, 40, 2, 0.5, 1.25)
    assert total.to_dict() == {
        "calls": 3,
        "cache_hits": 1,
        "prompt_tokens": 1200,
        "completion_tokens": 30,
        "saved_prompt_tokens": 40,
        "saved_completion_tokens": 2,
        "usd": 0.5,
        "wall_seconds": 1.25,
        "estimated_calls": 0,
    }
    assert total.summary() == (
        "3 calls, 1 cache hits, 1,230 tokens (1,200 in + 30 out), 42 tokens saved, $0.5000, 1.2 s"
    )


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("o3", "o3"),
        ("openai/GPT-4o-mini", "gpt-4o-mini"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("gpt-4-0613", "gpt-4"),
    ],
)
def test_prices_match_dated_variants_by_longest_prefix(model: str, family: str) -> None:
    assert price_for(model) == PRICES[family]


@pytest.mark.parametrize("model", ["gpt-4.5-preview", "gpt-4omni", "llama-3", "local:SmolLM2", ""])
def test_unknown_models_have_no_price(model: str) -> None:
    assert price_for(model) is None
    assert estimate_cost(model, 100, 100) is None


def test_estimate_cost_arithmetic() -> None:
    assert estimate_cost("gpt-4.1-mini", 1_000_000, 0) == pytest.approx(0.40)
    assert estimate_cost("gpt-4.1-mini", 0, 1_000_000) == pytest.approx(1.60)
    assert estimate_cost("gpt-4o", 1000, 100) == pytest.approx(0.0035)


def test_usage_adds_every_field() -> None:
    # __add__ spells the fields out (it runs per call): a field added to Usage must be added.
    names = [f.name for f in dataclasses.fields(Usage)]
    a = Usage(**{name: i + 1 for i, name in enumerate(names)})
    b = Usage(**{name: 10 * (i + 1) for i, name in enumerate(names)})
    assert (a + b).to_dict() == {name: 11 * (i + 1) for i, name in enumerate(names)}


class Watching(ScriptedRunner):
    """Records, as each request arrives, how many journal lines were on disk then."""

    def __init__(self, journal: UsageJournal) -> None:
        super().__init__(default="ok", model="m", latency=0.01)
        self.journal, self.seen = journal, []

    async def generate(self, request: LLMRequest) -> LLMResult:
        self.seen.append((request.prompt_text, self.journal.durable_lines))
        return await super().generate(request)


def test_calls_in_flight_share_fsyncs_and_none_leaves_before_its_line_is_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import threading

    real_fsync = os.fsync
    fsyncs: list[int] = []
    threads: set[str] = set()

    def fsync(fd: int) -> None:
        fsyncs.append(fd)
        threads.add(threading.current_thread().name)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "usage.jsonl"
    with UsageJournal(path, tag="run") as journal:
        opened = len(fsyncs)
        threads.clear()
        inner = Watching(journal)
        runner = AccountingRunner(inner, ledger=Ledger(Budget(calls=64), journal=journal))
        asyncio.run(runner.generate_many(_requests(32)))
        ran_on = set(threads)
        lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        sent_at = {r["id"]: n for n, r in enumerate(lines, start=1) if r["kind"] == "sent"}
        assert len(sent_at) == 32
        # Request i was booked as call i; it reached the model only once that call's sent
        # line was on disk.
        prompts = [r.prompt_text for r in _requests(32)]
        assert len(inner.seen) == 32
        for prompt, durable in inner.seen:
            assert durable >= sent_at[prompts.index(prompt)]
        group_fsyncs = len(fsyncs) - opened
    assert 1 <= group_fsyncs < 8, "32 calls booked together share a few fsyncs, not 32"
    # On the event loop's thread, once per turn: no hop to a worker thread and back.
    assert ran_on == {threading.main_thread().name}, ran_on
    with UsageJournal(path, tag="run") as again:
        assert again.usage.calls == 32


def test_a_soft_prompt_s_tokens_are_reserved() -> None:
    from sammo_core.runners.accounting import prompt_token_bound
    from sammo_core.soft_tensor import SoftTensor

    plain = LLMRequest.from_prompt("<soft-prompt n=100 sha=0> Hello")
    tensor = SoftTensor.from_values([[0.0, 1.0]] * 100)
    soft = dataclasses.replace(plain, soft_prompts=(tensor,))
    # 100 learned embeddings the model reads beyond the text: a token budget reserves them.
    assert prompt_token_bound(soft) == prompt_token_bound(plain) + 100
