"""Token buckets (driven by a fake clock), the limiter, retries' backoff, and ThrottledRunner."""

from __future__ import annotations

import asyncio
import random

import pytest

from sammo_core.errors import ConfigError, RunnerError
from sammo_core.runners.base import LLMRequest
from sammo_core.runners.retry import (
    RetryableError,
    RetryEvent,
    RetryPolicy,
    parse_retry_after,
    with_retries,
)
from sammo_core.runners.scripted import ScriptedRunner
from sammo_core.runners.throttle import (
    Limiter,
    ThrottledRunner,
    TokenBucket,
    estimate_tokens,
)
from sammo_core.tokens import count_tokens


class FakeTime:
    """A clock that only moves when someone sleeps on it (sleepers wake in the order they slept,
    which is the order of their wake-up times in these tests)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        target = self.now + seconds
        await asyncio.sleep(0)
        self.now = max(self.now, target)


# -- TokenBucket ------------------------------------------------------------------------------


def test_bucket_starts_full_and_refills_continuously() -> None:
    clock = FakeTime()
    bucket = TokenBucket(rate_per_minute=120, capacity=4, clock=clock)  # 2 per second
    assert bucket.level == 4.0
    assert [bucket.reserve(1) for _ in range(4)] == [0.0, 0.0, 0.0, 0.0]
    assert bucket.level == 0.0
    clock.now = 0.25
    assert bucket.level == pytest.approx(0.5)
    clock.now = 100.0
    assert bucket.level == 4.0  # never above capacity


def test_reservations_queue_with_exact_waits() -> None:
    clock = FakeTime()
    bucket = TokenBucket(rate_per_minute=60, capacity=1, clock=clock)  # 1 per second
    waits = [bucket.reserve(1) for _ in range(5)]
    assert waits == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert bucket.level == -4.0
    clock.now = 2.5  # time passes: later callers wait less
    assert bucket.reserve(1) == pytest.approx(2.5)


def test_default_capacity_is_one_second_of_rate_but_at_least_one() -> None:
    assert TokenBucket(6000).capacity == 100.0
    assert TokenBucket(30).capacity == 1.0


def test_oversized_request_waits_for_a_full_bucket_then_leaves_debt() -> None:
    clock = FakeTime()
    bucket = TokenBucket(rate_per_minute=600, capacity=10, clock=clock)  # 10 per second
    assert bucket.reserve(50) == 0.0  # larger than the bucket: goes at once when full ...
    assert bucket.level == -40.0  # ... and the debt is paid back by later callers
    assert bucket.reserve(1) == pytest.approx(4.1)
    clock.now = 100.0
    bucket.reserve(10)
    assert bucket.reserve(25) == pytest.approx(1.0)  # waits for a full bucket (10), not 25


def test_acquire_sleeps_once_for_the_whole_wait() -> None:
    clock = FakeTime()
    bucket = TokenBucket(rate_per_minute=60, capacity=1, clock=clock)

    async def main() -> list[float]:
        return [await bucket.acquire(1, sleep=clock.sleep) for _ in range(3)]

    assert asyncio.run(main()) == [0.0, 1.0, 1.0]
    assert clock.sleeps == [1.0, 1.0]


def test_cancelled_acquire_refunds_its_tokens() -> None:
    clock = FakeTime()
    bucket = TokenBucket(rate_per_minute=60, capacity=1, clock=clock)
    bucket.reserve(1)

    async def main() -> None:
        task = asyncio.ensure_future(bucket.acquire(1))  # real sleep of one second
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert bucket.level == 0.0


@pytest.mark.parametrize(
    ("rate", "capacity", "message"),
    [
        (0, None, "rate_per_minute must be a positive number; got 0"),
        (float("inf"), None, "rate_per_minute must be a positive number; got inf"),
        (60, -1, "capacity must be a positive number; got -1"),
    ],
)
def test_bucket_validates(rate: float, capacity: float | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TokenBucket(rate, capacity)


# -- Limiter and ThrottledRunner -------------------------------------------------------------


def test_limiter_validates() -> None:
    with pytest.raises(ConfigError, match="max_concurrency must be an integer >= 1; got 0"):
        Limiter(max_concurrency=0)
    with pytest.raises(ConfigError, match="tokens_per_minute must be a positive number"):
        Limiter(tokens_per_minute=-5)


def test_throttled_runner_caps_concurrency() -> None:
    inner = ScriptedRunner(default="ok", latency=0.01)
    runner = ThrottledRunner(inner, max_concurrency=3)
    requests = [LLMRequest.from_prompt(f"q{i}") for i in range(20)]
    results = asyncio.run(runner.generate_many(requests))
    assert [r.text for r in results] == ["ok"] * 20
    assert runner.stats.max_in_flight == 3
    assert runner.stats.calls == 20
    assert runner.stats.in_flight == 0
    assert runner.model == "scripted"
    assert sorted(inner.prompts) == sorted(r.prompt_text for r in requests)


def test_a_call_cancelled_in_its_rate_wait_gives_its_slot_back() -> None:
    limiter = Limiter(max_concurrency=1, requests_per_minute=60)

    async def main() -> tuple[int, int]:
        async with limiter.slot():  # the bucket's one request: the next waits a second
            pass
        waiting = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # The slot is free again: this call waits for the rate only, not for ever.
        async with asyncio.timeout(5), limiter.slot():
            in_flight = limiter.stats.in_flight
        return in_flight, limiter.stats.calls

    assert asyncio.run(main()) == (1, 2)
    assert limiter.stats.in_flight == 0


def test_throttled_runner_spaces_requests_per_minute() -> None:
    clock = FakeTime()
    starts: list[float] = []

    def reply(request: LLMRequest) -> str:
        starts.append(clock.now)
        return "ok"

    inner = ScriptedRunner(default=reply)
    runner = ThrottledRunner(
        inner, max_concurrency=10, requests_per_minute=120, clock=clock, sleep=clock.sleep
    )
    requests = [LLMRequest.from_prompt(f"q{i}") for i in range(7)]
    asyncio.run(runner.generate_many(requests))
    # Capacity 2 (one second of 120/min): two at once, then one every half second.
    assert starts == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    assert runner.stats.rate_waits == 5


def test_throttled_runner_charges_estimated_tokens_per_minute() -> None:
    clock = FakeTime()
    inner = ScriptedRunner(default="ok")
    runner = ThrottledRunner(inner, tokens_per_minute=6000, clock=clock, sleep=clock.sleep)
    request = LLMRequest.from_prompt("one two three", max_tokens=97)  # 3 + 97 = 100 tokens
    assert estimate_tokens(request) == 100
    assert estimate_tokens(LLMRequest.from_prompt("a b")) == 2 + 256

    async def main() -> None:
        for _ in range(3):
            await runner.generate(request)

    asyncio.run(main())
    # 100 tokens per second refill, capacity 100: the 2nd and 3rd calls wait one second each.
    assert clock.sleeps == pytest.approx([1.0, 1.0])
    assert runner.stats.tokens_charged == 300


def test_huge_request_does_not_deadlock() -> None:
    clock = FakeTime()
    inner = ScriptedRunner(default="ok")
    runner = ThrottledRunner(inner, tokens_per_minute=60, clock=clock, sleep=clock.sleep)
    huge = LLMRequest.from_prompt("word " * 1000, max_tokens=1000)
    result = asyncio.run(runner.generate(huge))
    assert result.text == "ok"


def test_throttled_runner_works_across_event_loops() -> None:
    runner = ThrottledRunner(ScriptedRunner(default="ok", latency=0.001), max_concurrency=1)
    for _ in range(2):  # each asyncio.run has its own loop; the semaphore follows
        requests = [LLMRequest.from_prompt(f"q{i}") for i in range(3)]
        assert [r.text for r in asyncio.run(runner.generate_many(requests))] == ["ok"] * 3
    assert runner.generate_sync(LLMRequest.from_prompt("x")).text == "ok"


def test_throttled_runner_model_follows_inner() -> None:
    runner = ThrottledRunner(ScriptedRunner(default="ok", model="inner-model"))
    assert runner.model == "inner-model"
    with pytest.raises(AttributeError, match="follows the inner runner"):
        runner.model = "other"
    assert "max_concurrency=32" in repr(runner)


# -- RetryPolicy and with_retries ------------------------------------------------------------


def test_backoff_is_exponential_capped_and_jittered_reproducibly() -> None:
    fixed = RetryPolicy(base_delay=0.5, max_delay=3.0, jitter=False)
    assert [fixed.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert fixed.delay(10_000) == 3.0
    jittered = RetryPolicy(base_delay=0.5, max_delay=3.0, seed=1)
    a = [jittered.delay(n, jittered.make_rng("k")) for n in range(1, 7)]
    b = [jittered.delay(n, jittered.make_rng("k")) for n in range(1, 7)]
    assert a == b
    assert all(0 <= d <= fixed.delay(n) for n, d in enumerate(a, start=1))
    rng = jittered.make_rng("k")
    assert [jittered.delay(3, rng) for _ in range(3)] != [jittered.delay(3, rng)] * 3


def test_retry_after_replaces_backoff_up_to_max_retry_after() -> None:
    policy = RetryPolicy(base_delay=0.01, max_delay=0.05, max_retry_after=30.0)
    assert policy.delay(1, random.Random(0), retry_after=2.0) == 2.0
    assert policy.delay(1, random.Random(0), retry_after=60.0) == 30.0
    assert policy.delay(1, random.Random(0), retry_after=-1.0) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be >= 1"),
        ({"base_delay": -1.0}, "base_delay must be a finite number >= 0"),
        ({"base_delay": 2.0, "max_delay": 1.0}, "max_delay must be finite and >= base_delay"),
        ({"max_retry_after": float("nan")}, "max_retry_after must be a finite number >= 0"),
    ],
)
def test_retry_policy_validates(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_parse_retry_after() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "0.25"}) == 0.25
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert parse_retry_after({"retry-after": date}, now=1445412480.0 - 10) == 10.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_with_retries_waits_per_policy_and_reports_each_retry() -> None:
    clock = FakeTime()
    outcomes: list[BaseException | str] = [
        RetryableError("HTTP 503"),
        RetryableError("HTTP 429", retry_after=1.5),
        "ok",
    ]
    events: list[RetryEvent] = []

    async def attempt() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    policy = RetryPolicy(base_delay=0.5, jitter=False)
    result = asyncio.run(
        with_retries(attempt, policy, "model 'm' at x", sleep=clock.sleep, on_retry=events.append)
    )
    assert result == "ok"
    assert clock.sleeps == [0.5, 1.5]
    assert events == [RetryEvent(1, 0.5, "HTTP 503"), RetryEvent(2, 1.5, "HTTP 429")]


def test_with_retries_gives_up_with_the_last_failure() -> None:
    clock = FakeTime()
    calls = []

    async def attempt() -> str:
        calls.append(1)
        raise RetryableError(f"HTTP 500 number {len(calls)}")

    policy = RetryPolicy(max_attempts=3, base_delay=0.1, seed=0)
    with pytest.raises(RunnerError) as info:
        asyncio.run(with_retries(attempt, policy, "model 'm' at http://h/v1", sleep=clock.sleep))
    assert str(info.value) == (
        "model 'm' at http://h/v1 failed after 3 attempts; last failure: HTTP 500 number 3"
    )
    assert isinstance(info.value.__cause__, RetryableError)
    assert len(clock.sleeps) == 2


def test_with_retries_does_not_retry_other_errors() -> None:
    calls = []

    async def attempt() -> str:
        calls.append(1)
        raise RunnerError("authentication failed")

    with pytest.raises(RunnerError, match="authentication failed"):
        asyncio.run(with_retries(attempt, RetryPolicy(), "m"))
    assert calls == [1]


def test_scripted_prompt_counts_match_estimate() -> None:
    request = LLMRequest.from_prompt("Hello, world!", system="Be brief.")
    assert estimate_tokens(request) == count_tokens(request.prompt_text) + 256


def test_a_scored_call_that_sends_several_requests_is_charged_them_all() -> None:
    """A completions server scores each label in a request of its own: a scored call planned
    as 3 requests takes 3 from the requests-per-minute bucket, so the next call waits."""
    import asyncio

    from sammo_core.runners import LLMRequest, LLMResult, Runner
    from sammo_core.runners.throttle import ThrottledRunner

    class PerLabel(Runner):
        model = "per-label"

        def planned_calls(self, request: LLMRequest) -> tuple[LLMRequest, ...]:
            return tuple(request for _ in request.labels) or (request,)

        async def generate(self, request: LLMRequest) -> LLMResult:
            return LLMResult("a", calls=max(1, len(request.labels)))

    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    runner = ThrottledRunner(PerLabel(), requests_per_minute=3, clock=lambda: 0.0, sleep=sleep)

    async def main() -> None:
        await runner.generate(LLMRequest.from_prompt("x", labels=("a", "b", "c")))
        await runner.generate(LLMRequest.from_prompt("y"))

    asyncio.run(main())
    # At 3 a minute (20 s each) the next request waits for the three sent before it; charged
    # as one request, it would wait 20 s.
    assert waits[-1] == pytest.approx(60.0)
