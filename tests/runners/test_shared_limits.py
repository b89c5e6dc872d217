"""Limits held once for many workers: slots, rates and a budget that hold across Ray workers
(the loopback server counts), and the tickets of a lost worker given back."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sammo_core.errors import BudgetExceededError
from sammo_core.runners import Budget, LLMRequest, ScriptedRunner
from sammo_core.runners.accounting import Reservation, UsageJournal
from sammo_core.runners.shared_limits import LocalLimits, SharedLimits, SharedLimitsRunner
from sammo_core.testing.chat_server import ChatServer


def import_ray() -> Any:
    """Ray, or a skip where it is not installed (a failure under SAMMO_REQUIRE_RAY=1)."""
    if os.environ.get("SAMMO_REQUIRE_RAY") == "1":
        import ray

        return ray
    return pytest.importorskip("ray", reason="needs the [ray] extra: pip install -e '.[ray]'")


def test_a_new_attempt_gives_back_the_slots_of_a_lost_one_and_books_them(tmp_path: Path) -> None:
    journal = tmp_path / "usage.jsonl"
    limits = SharedLimits(max_concurrency=2, journal=journal, tag="t")

    async def lose_two_calls() -> None:
        assert await limits.register("job") == 0  # the first attempt
        for _ in range(2):  # two calls leave, and their worker dies before they come back
            status, _ = await limits.acquire("job", 0, 1, Reservation(100, 10))
            assert status == "ok"

    asyncio.run(lose_two_calls())
    assert limits.stats()["in_flight"] == 2
    # The retry of the job registers: both slots come back, booked at their reservations.
    assert asyncio.run(limits.register("job")) == 1  # one attempt started before
    stats = limits.stats()
    assert (stats["in_flight"], stats["held"], stats["lost"]) == (0, 0, 2)
    runner = SharedLimitsRunner(ScriptedRunner(default="ok"), LocalLimits(limits), "job")
    asyncio.run(runner.generate(LLMRequest.from_prompt("again")))
    asyncio.run(limits.close())
    with UsageJournal(journal, tag="t") as read:
        assert read.usage.calls == 3
        assert read.usage.prompt_tokens >= 200  # the lost calls at their full reservation


def test_a_late_release_of_a_lost_ticket_is_not_booked_twice() -> None:
    limits = SharedLimits(max_concurrency=1)

    async def main() -> None:
        _, ticket = await limits.acquire("job", 0, 1, Reservation(5, 5))
        await limits.register("job")  # a retry started: the ticket counts as lost
        limits.release_now("job", ticket, None, True)  # then the old attempt's release arrives

    asyncio.run(main())
    assert limits.usage().calls == 1
    assert limits.stats()["in_flight"] == 0


# -- across Ray workers ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    ray = import_ray()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    # Workers cannot import a test module by name: its functions travel by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        yield ray
    finally:
        ray.shutdown()


def _calls(base_url: str, limits: Any, worker: int, n: int) -> tuple[int, int]:
    """``n`` distinct calls at once through one worker's stack; (answered, refused)."""
    from sammo_core.runners.openai_runner import OpenAIRunner

    async def main() -> tuple[int, int]:
        backend = OpenAIRunner("loopback", base_url=base_url, max_concurrency=64)
        runner = SharedLimitsRunner(backend, limits, f"worker-{worker}")
        await runner.register()
        requests = [LLMRequest.from_prompt(f"w{worker} q{i}", max_tokens=8) for i in range(n)]
        calls = (runner.generate(r) for r in requests)
        found = await asyncio.gather(*calls, return_exceptions=True)
        await runner.aclose()
        refused = sum(isinstance(f, BudgetExceededError) for f in found)
        others = [f for f in found if isinstance(f, BaseException)]
        assert not [f for f in others if not isinstance(f, BudgetExceededError)], others
        return n - refused, refused

    return asyncio.run(main())


def _peak_per_second(started: list[float]) -> int:
    """The most requests that started within any one second."""
    started = sorted(started)
    peak, j = 0, 0
    for i, t in enumerate(started):
        while started[j] <= t - 1.0:
            j += 1
        peak = max(peak, i - j + 1)
    return peak


@pytest.mark.slow
def test_concurrency_rate_and_budget_hold_across_two_ray_workers(
    ray_cluster: Any, tmp_path: Path
) -> None:
    from sammo_core.runners.shared_limits import start_ray_limits

    ray = ray_cluster
    rpm, concurrency, budget = 600, 3, 40  # 10 requests a second; each worker wants 30 at once
    with ChatServer(latency=0.05) as server:
        limits = start_ray_limits(
            concurrency, rpm, budget=Budget(calls=budget), journal=tmp_path / "u.jsonl", tag="t"
        )
        work = ray.remote(num_cpus=1)(_calls)
        outcomes = ray.get([work.remote(server.base_url, limits, w, 30) for w in range(2)])
        stats = server.stats()
        usage, held = ray.get(limits.handle.snapshot.remote())
        ray.get(limits.handle.close.remote())
    answered = sum(a for a, _ in outcomes)
    assert answered == stats.completions == budget  # never more than the budget, all of it used
    assert all(a > 0 for a, _ in outcomes)  # both workers called: the limits were shared
    assert stats.max_in_flight <= concurrency
    assert held["max_in_flight"] == concurrency
    starts = [r.started for r in stats.records if r.path.endswith("/chat/completions")]
    # The bucket starts full (one second's worth, 10) and refills 10 a second.
    assert _peak_per_second(starts) <= 2 * rpm // 60
    assert usage.calls == budget
    with UsageJournal(tmp_path / "u.jsonl", tag="t") as journal:
        assert journal.usage.calls == budget  # the actor's journal, durable on disk
