"""Limits shared by many processes: one owner of the slots, the rates and the budget ledger.

One process holds its limits in its own runner stack (a
:class:`~sammo_core.runners.throttle.Limiter` in the backend, a
:class:`~sammo_core.runners.accounting.Ledger` in the accounting wrapper). Workers of a cluster
each have a stack of their own, so each would allow the whole concurrency, rate and budget.
:class:`SharedLimits` holds them once, for all: the concurrency slots, the requests and tokens
per minute, and a ledger with an optional :class:`~sammo_core.runners.accounting.Budget` that
writes a :class:`~sammo_core.runners.accounting.UsageJournal` (durable per call). Run one per
endpoint and run, as a Ray actor (:func:`start_ray_limits`, the ``ray`` extra) on the
driver's machine, so its journal lands beside the run's results.

Each worker puts a :class:`SharedLimitsRunner` over its backend (under its cache: a hit asks
nothing). Before each call the runner asks the owner for a ticket (the budget reserves the
call's upper bound, then a slot and the rates let it through); after it, the runner hands the
ticket back with what the call used. A worker lost with calls in flight (killed) leaves
tickets behind: the next attempt of the same job (the same ``holder``) calls
:meth:`SharedLimits.register`, which gives their slots back and books each at its full
reservation, since the model may have answered it, and says which attempt this is.

>>> import asyncio
>>> from sammo_core.runners import Budget, LLMRequest, ScriptedRunner
>>> limits = SharedLimits(max_concurrency=2, budget=Budget(calls=3))
>>> model = ScriptedRunner(default="ok", latency=0.01)
>>> runner = SharedLimitsRunner(model, LocalLimits(limits), "job-1")
>>> requests = [LLMRequest.from_prompt(f"q{i}") for i in range(3)]
>>> [r.text for r in asyncio.run(runner.generate_many(requests))]
['ok', 'ok', 'ok']
>>> limits.stats()["max_in_flight"], limits.usage().calls
(2, 3)
>>> asyncio.run(runner.generate(LLMRequest.from_prompt("one too many")))
Traceback (most recent call last):
...
sammo_core.errors.BudgetExceededError: calls budget exhausted: 3 used + 1 more would exceed ...

Importing this module does not import Ray; :func:`start_ray_limits` does.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Protocol

from sammo_core.errors import BudgetExceededError, CacheMissError, ConfigError
from sammo_core.runners.accounting import Budget, Ledger, Reservation, Usage, UsageJournal
from sammo_core.runners.accounting import prompt_token_bound as _prompt_bound
from sammo_core.runners.base import LLMRequest, LLMResult, Runner, WrapperRunner
from sammo_core.runners.pricing import estimate_cost
from sammo_core.runners.throttle import Limiter, estimate_tokens

__all__ = [
    "LimitsClient",
    "LocalLimits",
    "RayLimits",
    "SharedLimits",
    "SharedLimitsRunner",
    "start_ray_limits",
]

# Errors a call raises before anything reaches the model: its ticket is booked at nothing.
_NOT_SENT = (BudgetExceededError, CacheMissError, ConfigError)
_UNSENT = ConfigError("the call stopped before it was sent")


class SharedLimits:
    """Concurrency slots, request/token rates and a budget ledger, for every worker at once.

    Args:
        max_concurrency: calls in flight across all workers.
        requests_per_minute, tokens_per_minute: rates across all workers (``None``: none).
        budget: the most all workers together may spend (``None``: no limit).
        journal: where to write the usage journal (fsync'ed per call, group commit); ``None``
            keeps usage in memory only.
        tag: the run's name in the journal (reopening a journal of another run fails).
        model: prices results that name no model (see ``Ledger.settle``).

    Methods are coroutines so that one Ray async actor serves many workers' calls at once.
    """

    def __init__(
        self,
        max_concurrency: int = 32,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        budget: Budget | None = None,
        journal: str | Path | None = None,
        *,
        tag: str = "",
        model: str = "",
    ) -> None:
        self.limiter = Limiter(max_concurrency, requests_per_minute, tokens_per_minute)
        self._journal = UsageJournal(journal, tag=tag) if journal is not None else None
        self.ledger = Ledger(budget, journal=self._journal)
        self.model = model
        self._held: dict[str, set[int]] = {}
        self._attempts: dict[str, int] = {}
        self.lost = 0

    def __repr__(self) -> str:
        return f"SharedLimits({self.limiter!r}, budget={self.ledger.budget!r})"

    async def acquire(
        self, holder: str, tokens: int, requests: int, reservation: Reservation
    ) -> tuple[str, Any]:
        """A ticket for one call of ``holder``: ``("ok", ticket)``, or ``("budget", why)``
        when the budget can no longer pay for it (an error object would cross processes less
        reliably than its text)."""
        try:
            ticket = await self.ledger.reserve(reservation)
        except BudgetExceededError as exc:
            return "budget", str(exc)
        try:
            await self.ledger.durable()  # its sent line on disk before it leaves
            await self.limiter.acquire(tokens, requests)
        except BaseException:
            self.ledger.settle(ticket, None, _UNSENT, self.model)
            raise
        self._held.setdefault(holder, set()).add(ticket)
        return "ok", ticket

    def release_now(self, holder: str, ticket: int, result: LLMResult | None, sent: bool) -> None:
        """Give back ``ticket``'s slot and book what its call used (``result``), or, for a call
        that failed, its full reservation if it was ``sent`` (else nothing)."""
        held = self._held.get(holder)
        if held is None or ticket not in held:
            return  # booked already: register() found the attempt that held it lost
        held.discard(ticket)
        self.limiter.release()
        self.ledger.settle(ticket, result, None if sent else _UNSENT, self.model)

    async def release(self, holder: str, ticket: int, result: LLMResult | None, sent: bool) -> None:
        """:meth:`release_now`, as an actor method."""
        self.release_now(holder, ticket, result, sent)

    async def register(self, holder: str) -> int:
        """Start an attempt of ``holder``'s job: the tickets an earlier attempt still holds
        (it was lost) give their slots back and are booked at their full reservation. Returns
        how many attempts of the job started before this one (0: this is the first)."""
        lost = self._held.pop(holder, set())
        for ticket in sorted(lost):
            self.limiter.release()
            self.ledger.settle(ticket, None, None, self.model)
        self.lost += len(lost)
        attempt = self._attempts.get(holder, 0)
        self._attempts[holder] = attempt + 1
        return attempt

    def usage(self) -> Usage:
        """What every worker's calls spent so far (calls in flight not yet in it)."""
        return self.ledger.usage

    def stats(self) -> dict[str, Any]:
        """The limiter's counters, the tickets held now and the tickets of lost attempts."""
        return {
            **dataclasses.asdict(self.limiter.stats),
            "held": sum(len(t) for t in self._held.values()),
            "lost": self.lost,
        }

    async def snapshot(self) -> tuple[Usage, dict[str, Any]]:
        """:meth:`usage` and :meth:`stats` in one actor call."""
        return self.usage(), self.stats()

    async def close(self) -> None:
        """Make the journal durable and close it."""
        if self._journal is not None:
            self._journal.close()


class LimitsClient(Protocol):
    """How a worker reaches a :class:`SharedLimits`: in-process or through a Ray actor."""

    charges_tokens: bool

    async def acquire(
        self, holder: str, tokens: int, requests: int, reservation: Reservation
    ) -> tuple[str, Any]: ...

    def release(self, holder: str, ticket: int, result: LLMResult | None, sent: bool) -> None: ...

    async def register(self, holder: str) -> int: ...


class LocalLimits:
    """A :class:`SharedLimits` in this process (tests, one-process use)."""

    def __init__(self, limits: SharedLimits) -> None:
        self.limits = limits
        self.charges_tokens = limits.limiter.tokens_per_minute is not None

    async def acquire(
        self, holder: str, tokens: int, requests: int, reservation: Reservation
    ) -> tuple[str, Any]:
        return await self.limits.acquire(holder, tokens, requests, reservation)

    def release(self, holder: str, ticket: int, result: LLMResult | None, sent: bool) -> None:
        self.limits.release_now(holder, ticket, result, sent)

    async def register(self, holder: str) -> int:
        return await self.limits.register(holder)


class RayLimits:
    """A :class:`SharedLimits` in a Ray actor (see :func:`start_ray_limits`); picklable, so a
    Ray task takes it as an argument."""

    def __init__(self, handle: Any, charges_tokens: bool) -> None:
        self.handle = handle
        self.charges_tokens = charges_tokens

    async def acquire(
        self, holder: str, tokens: int, requests: int, reservation: Reservation
    ) -> tuple[str, Any]:
        found: tuple[str, Any] = await self.handle.acquire.remote(
            holder, tokens, requests, reservation
        )
        return found

    def release(self, holder: str, ticket: int, result: LLMResult | None, sent: bool) -> None:
        # Sent without waiting for the answer: the call's caller need not wait for the books.
        self.handle.release.remote(holder, ticket, result, sent)

    async def register(self, holder: str) -> int:
        found: int = await self.handle.register.remote(holder)
        return found

    async def snapshot(self) -> tuple[Usage, dict[str, Any]]:
        """The actor's usage and stats (see :meth:`SharedLimits.snapshot`)."""
        found: tuple[Usage, dict[str, Any]] = await self.handle.snapshot.remote()
        return found


def start_ray_limits(
    max_concurrency: int = 32,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    budget: Budget | None = None,
    journal: str | Path | None = None,
    *,
    tag: str = "",
    model: str = "",
) -> RayLimits:
    """Start a :class:`SharedLimits` as a Ray actor on this (the driver's) node, so that its
    journal is written here; ``ray.init`` must have run."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    remote: Any = ray.remote  # its overloads do not list the actor options
    actor = remote(num_cpus=0, max_concurrency=10_000)(SharedLimits)
    handle = actor.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False)
    ).remote(
        max_concurrency,
        requests_per_minute,
        tokens_per_minute,
        budget,
        None if journal is None else str(journal),
        tag=tag,
        model=model,
    )
    return RayLimits(handle, tokens_per_minute is not None)


def _reservation(model: str, planned: tuple[LLMRequest, ...]) -> Reservation:
    """The most the calls ``planned`` can cost (as ``AccountingRunner.reservation``)."""
    prompt = sum(_prompt_bound(call) for call in planned)
    completion = sum(call.max_tokens or 0 for call in planned)
    usd = estimate_cost(model, prompt, completion) or 0.0
    return Reservation(prompt, completion, usd, len(planned))


class SharedLimitsRunner(WrapperRunner):
    """Asks a :class:`SharedLimits` (through ``limits``) before each call of ``inner``.

    ``holder`` names the job this runner works for: call :meth:`register` when an attempt of
    the job starts, so the tickets of a lost earlier attempt are given back.
    """

    def __init__(self, inner: Runner, limits: LimitsClient, holder: str) -> None:
        super().__init__(inner)
        self.limits = limits
        self.holder = holder

    def __repr__(self) -> str:
        return f"SharedLimitsRunner({self.inner!r}, holder={self.holder!r})"

    async def register(self) -> int:
        """Start an attempt of the job; how many started before (see
        :meth:`SharedLimits.register`)."""
        return await self.limits.register(self.holder)

    async def generate(self, request: LLMRequest) -> LLMResult:
        planned = self.inner.planned_calls(request)
        tokens = sum(estimate_tokens(r) for r in planned) if self.limits.charges_tokens else 0
        reservation = _reservation(self.inner.model, planned)
        status, ticket = await self.limits.acquire(self.holder, tokens, len(planned), reservation)
        if status == "budget":
            raise BudgetExceededError(ticket)
        result: LLMResult | None = None
        sent = True
        try:
            result = await self.inner.generate(request)
        except BaseException as exc:
            sent = not isinstance(exc, _NOT_SENT)
            raise
        finally:
            # The books need the counts only, not the text.
            slim = None if result is None else dataclasses.replace(result, text="")
            self.limits.release(self.holder, ticket, slim, sent)
        return result
