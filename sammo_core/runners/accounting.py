"""Exact usage accounting and call, token and dollar budgets for any runner.

:class:`AccountingRunner` wraps a runner (usually outside a
:class:`~sammo_core.runners.cache.CachedRunner`) and counts every call: calls sent to the model,
tokens and dollars spent, and cache hits with the tokens they saved. With a :class:`Budget` it
refuses a call that would exceed it with :class:`BudgetExceededError`; the work done so far is
kept, so a search can stop and report its best candidate.

>>> import asyncio
>>> from sammo_core.runners import LLMRequest, ScriptedRunner
>>> runner = AccountingRunner(ScriptedRunner(default="ok", model="gpt-4o-mini"), Budget(calls=2))
>>> request = LLMRequest.from_prompt("Say ok")
>>> _ = asyncio.run(runner.generate_many([request, request]))
>>> asyncio.run(runner.generate(request))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
sammo_core.errors.BudgetExceededError: calls budget exhausted: 2 used + 0 in flight + 1 more ...
>>> (runner.usage.calls, runner.usage.prompt_tokens, runner.usage.completion_tokens)
(2, 4, 2)
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

from sammo_core.errors import BudgetExceededError, ConfigError
from sammo_core.runners.base import LLMRequest, LLMResult, Runner
from sammo_core.runners.pricing import estimate_cost
from sammo_core.tokens import count_tokens

__all__ = ["AccountingRunner", "Budget", "Ledger", "Usage"]


@dataclasses.dataclass(frozen=True, slots=True)
class Budget:
    """Upper limits on calls sent to the model, tokens spent and estimated dollars.

    ``None`` means no limit. Cache hits cost nothing and count against no limit.

    >>> Budget(calls=100, usd=0.5)
    Budget(calls=100, tokens=None, usd=0.5)
    >>> Budget(calls=0)
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: Budget(calls=...) must be a positive int or None; got 0
    """

    calls: int | None = None
    tokens: int | None = None
    usd: float | None = None

    def __post_init__(self) -> None:
        for name in ("calls", "tokens"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value <= 0
            ):
                raise ConfigError(
                    f"Budget({name}=...) must be a positive int or None; got {value!r}"
                )
        usd = self.usd
        if usd is not None and (
            isinstance(usd, bool) or not isinstance(usd, int | float) or not usd > 0
        ):
            raise ConfigError(f"Budget(usd=...) must be a positive number or None; got {usd!r}")


@dataclasses.dataclass(frozen=True, slots=True)
class Usage:
    """What a runner used: calls sent, cache hits, tokens spent and saved, dollars, wall time.

    ``wall_seconds`` is the time during which at least one call was in flight (concurrent calls
    overlap, so it is not their sum). Usages add up field by field.

    >>> total = Usage(calls=2, prompt_tokens=10, usd=0.01) + Usage(calls=1, cache_hits=3)
    >>> total.summary()
    '3 calls, 3 cache hits, 10 tokens (10 in + 0 out), 0 tokens saved, $0.0100, 0.0 s'
    """

    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    saved_prompt_tokens: int = 0
    saved_completion_tokens: int = 0
    usd: float = 0.0
    wall_seconds: float = 0.0

    @property
    def total_tokens(self) -> int:
        """Tokens spent (not counting those saved by cache hits)."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def saved_tokens(self) -> int:
        """Tokens cache hits did not have to spend."""
        return self.saved_prompt_tokens + self.saved_completion_tokens

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            **{
                f.name: getattr(self, f.name) + getattr(other, f.name)
                for f in dataclasses.fields(self)
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """One line for logs and reports."""
        return (
            f"{self.calls:,} calls, {self.cache_hits:,} cache hits, "
            f"{self.total_tokens:,} tokens ({self.prompt_tokens:,} in + "
            f"{self.completion_tokens:,} out), {self.saved_tokens:,} tokens saved, "
            f"${self.usd:.4f}, {self.wall_seconds:.1f} s"
        )


class Ledger:
    """Usage and reservations that one or more :class:`AccountingRunner` s share.

    Give the task runner and a proposer runner the same ledger to enforce one budget over
    both and to read their combined usage.

    >>> from sammo_core.runners import ScriptedRunner
    >>> shared = Ledger(Budget(calls=10))
    >>> task = AccountingRunner(ScriptedRunner(default="a"), ledger=shared)
    >>> proposer = AccountingRunner(ScriptedRunner(default="b"), ledger=shared)
    >>> task.budget is proposer.budget
    True
    """

    def __init__(self, budget: Budget | None = None, used: Usage | None = None) -> None:
        self.budget = budget
        self._lock = threading.Lock()
        self._used = used if used is not None else Usage()  # e.g. restored from a checkpoint
        self._reserved_calls = 0
        self._reserved_tokens = 0
        self._reserved_usd = 0.0
        self._active = 0
        self._busy_since = 0.0

    @property
    def usage(self) -> Usage:
        """A snapshot of the usage so far (calls in flight are not in it yet)."""
        with self._lock:
            used = self._used
            if self._active:
                elapsed = time.perf_counter() - self._busy_since
                used = dataclasses.replace(used, wall_seconds=used.wall_seconds + elapsed)
            return used


class AccountingRunner(Runner):
    """Counts what ``inner`` uses and enforces an optional :class:`Budget`.

    Before each call it reserves the call and an estimate of its tokens (the prompt by
    :func:`~sammo_core.tokens.count_tokens` plus ``max_tokens``) and its dollars; if what is
    used plus what is reserved by calls in flight plus this reservation would exceed a limit,
    it raises :class:`BudgetExceededError`. When the call returns, the reservation is replaced
    by the exact figures, so any number of concurrent calls cannot overshoot the call budget.
    A result with ``cached=True`` counts as a cache hit: its tokens are saved, not spent. When
    ``inner`` is a :class:`~sammo_core.runners.cache.CachedRunner` (it has ``will_hit``), a
    request it will answer from the cache passes even a used-up budget. A call that raises
    counts nothing. The cost is ``LLMResult.cost_usd`` when the runner sets
    it, else :func:`~sammo_core.runners.pricing.estimate_cost` (zero for unpriced models, so a
    dollar budget does not limit those).
    """

    def __init__(
        self, inner: Runner, budget: Budget | None = None, ledger: Ledger | None = None
    ) -> None:
        if ledger is not None and budget is not None and ledger.budget != budget:
            raise ConfigError("pass the budget to the shared Ledger, not to each AccountingRunner")
        self.inner = inner
        self.ledger = ledger if ledger is not None else Ledger(budget)

    @property
    def budget(self) -> Budget | None:
        return self.ledger.budget

    @property
    def model(self) -> str:
        """The inner runner's model name."""
        return self.inner.model

    @model.setter
    def model(self, value: str) -> None:
        raise AttributeError(f"{type(self).__name__}.model follows the inner runner; set it there")

    def __repr__(self) -> str:
        return f"AccountingRunner({self.inner!r}, budget={self.budget!r})"

    @property
    def usage(self) -> Usage:
        """A snapshot of the ledger's usage (shared with other runners on the same ledger)."""
        return self.ledger.usage

    def _estimate(self, request: LLMRequest) -> tuple[int, float]:
        prompt = count_tokens(request.prompt_text)
        completion = request.max_tokens or 0
        usd = estimate_cost(self.inner.model, prompt, completion) or 0.0
        return prompt + completion, usd

    def _reserve(self, tokens: int, usd: float, check: bool) -> None:
        """Check the budget and reserve one call; the caller holds the lock."""
        budget, used = self.ledger.budget, self.ledger._used
        if budget is not None and check:
            checks: list[tuple[str, float | None, float, float, float]] = [
                ("calls", budget.calls, used.calls, self.ledger._reserved_calls, 1),
                ("tokens", budget.tokens, used.total_tokens, self.ledger._reserved_tokens, tokens),
                ("usd", budget.usd, used.usd, self.ledger._reserved_usd, usd),
            ]
            for name, limit, spent, in_flight, more in checks:
                if limit is not None and spent + in_flight + more > limit:
                    raise BudgetExceededError(
                        f"{name} budget exhausted: {_fmt(spent)} used + {_fmt(in_flight)} in "
                        f"flight + {_fmt(more)} more would exceed the {_fmt(limit)} allowed "
                        f"(Budget({name}={limit!r})); work done so far is kept. "
                        "Raise the budget or reuse a cache to go on."
                    )
        self.ledger._reserved_calls += 1
        self.ledger._reserved_tokens += tokens
        self.ledger._reserved_usd += usd
        if self.ledger._active == 0:
            self.ledger._busy_since = time.perf_counter()
        self.ledger._active += 1

    def _release(self, tokens: int, usd: float, result: LLMResult | None) -> None:
        """Swap a reservation for what ``result`` used; the caller holds the lock."""
        self.ledger._reserved_calls -= 1
        self.ledger._reserved_tokens -= tokens
        self.ledger._reserved_usd -= usd
        self.ledger._active -= 1
        used = self.ledger._used
        if self.ledger._active == 0:
            wall = used.wall_seconds + time.perf_counter() - self.ledger._busy_since
            used = dataclasses.replace(used, wall_seconds=wall)
        if result is not None and result.cached:
            used = dataclasses.replace(
                used,
                cache_hits=used.cache_hits + 1,
                saved_prompt_tokens=used.saved_prompt_tokens + result.prompt_tokens,
                saved_completion_tokens=used.saved_completion_tokens + result.completion_tokens,
            )
        elif result is not None:
            cost = result.cost_usd or estimate_cost(
                result.model or self.inner.model, result.prompt_tokens, result.completion_tokens
            )
            used = dataclasses.replace(
                used,
                calls=used.calls + 1,
                prompt_tokens=used.prompt_tokens + result.prompt_tokens,
                completion_tokens=used.completion_tokens + result.completion_tokens,
                usd=used.usd + (cost or 0.0),
            )
        self.ledger._used = used

    async def generate(self, request: LLMRequest) -> LLMResult:
        # A wrapped cache that will answer costs nothing, so no budget can refuse it. There is
        # no await between this check and the inner call, so the answer still holds then.
        will_hit = getattr(self.inner, "will_hit", None)
        free = callable(will_hit) and bool(will_hit(request))
        tokens, usd = (0, 0.0) if free else self._estimate(request)
        with self.ledger._lock:
            self._reserve(tokens, usd, check=not free)
        result: LLMResult | None = None
        try:
            result = await self.inner.generate(request)
        finally:
            with self.ledger._lock:
                self._release(tokens, usd, result)
        return result

    async def aclose(self) -> None:
        """Close the inner runner."""
        await self.inner.aclose()


def _fmt(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.6f}".rstrip("0")
