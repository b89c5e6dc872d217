"""Concurrency and rate limits: token buckets, a limiter, and a throttling runner wrapper.

:class:`TokenBucket` refills continuously. :meth:`TokenBucket.reserve` takes what a request needs
at once (the level may go negative, which queues later callers behind it) and returns the exact
wait, so an acquire is O(1) and sleeps once: no polling. A request larger than the bucket only
waits for a full bucket and then leaves it in debt, so it goes through instead of waiting for
ever, and the long-run rate still holds.

:class:`Limiter` combines a semaphore (concurrent calls) with a requests-per-minute and a
tokens-per-minute bucket; :class:`ThrottledRunner` puts one in front of any runner.

>>> now = [0.0]
>>> bucket = TokenBucket(rate_per_minute=60, capacity=2, clock=lambda: now[0])
>>> [bucket.reserve(1) for _ in range(4)]  # two from the full bucket, then one per second
[0.0, 0.0, 1.0, 2.0]
>>> now[0] = 10.0
>>> bucket.level
2.0
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Awaitable, Callable

from sammo_core.errors import ConfigError
from sammo_core.runners.base import LLMRequest, LLMResult, Runner, WrapperRunner
from sammo_core.tokens import count_tokens

__all__ = [
    "DEFAULT_COMPLETION_ESTIMATE",
    "Limiter",
    "ThrottleStats",
    "ThrottledRunner",
    "TokenBucket",
    "estimate_tokens",
]

DEFAULT_COMPLETION_ESTIMATE = 256
"""Completion tokens assumed for a request without ``max_tokens``."""

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]


def estimate_tokens(request: LLMRequest) -> int:
    """Tokens a request is charged up front: its prompt plus ``max_tokens`` (or 256).

    >>> estimate_tokens(LLMRequest.from_prompt("Hello, world!", max_tokens=10))
    14
    """
    return count_tokens(request.prompt_text) + (request.max_tokens or DEFAULT_COMPLETION_ESTIMATE)


def _check_rate(name: str, value: float | None, *, optional: bool = True) -> None:
    if value is not None and not (value > 0 and math.isfinite(value)):
        alternative = " or None" if optional else ""
        raise ConfigError(f"{name} must be a positive number{alternative}; got {value}")


class TokenBucket:
    """A continuously refilling token bucket.

    Args:
        rate_per_minute: tokens added per minute.
        capacity: the most the bucket holds (the largest burst); default one second's worth,
            at least 1, so that no minute sees much more than ``rate_per_minute``.
        clock: seconds, monotonic; tests pass a fake.

    The bucket starts full.
    """

    def __init__(
        self,
        rate_per_minute: float,
        capacity: float | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        _check_rate("rate_per_minute", rate_per_minute, optional=False)
        if capacity is None:
            capacity = max(1.0, rate_per_minute / 60.0)
        _check_rate("capacity", capacity, optional=False)
        self.rate_per_minute = float(rate_per_minute)
        self.capacity = float(capacity)
        self._per_second = self.rate_per_minute / 60.0
        self._clock = clock
        self._level = self.capacity
        self._updated = clock()

    def __repr__(self) -> str:
        return (
            f"TokenBucket(rate_per_minute={self.rate_per_minute:g}, capacity={self.capacity:g}, "
            f"level={self.level:.2f})"
        )

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._updated
        if elapsed > 0:
            self._level = min(self.capacity, self._level + elapsed * self._per_second)
            self._updated = now

    @property
    def level(self) -> float:
        """Tokens available now; negative while reservations wait for tokens not yet added."""
        self._refill()
        return self._level

    def reserve(self, amount: float = 1.0) -> float:
        """Take ``amount`` now and return the seconds to wait before using it.

        The caller must wait that long (see :meth:`acquire`); callers are served in the order
        they reserve. An amount above ``capacity`` waits for a full bucket, then takes it all
        and leaves the rest as debt.
        """
        if amount < 0:
            raise ConfigError(f"cannot reserve a negative amount of tokens; got {amount}")
        self._refill()
        needed = min(amount, self.capacity)
        wait = max(0.0, (needed - self._level) / self._per_second)
        self._level -= amount
        return wait

    def refund(self, amount: float) -> None:
        """Give back tokens reserved by a call that did not happen (e.g. was cancelled)."""
        self._refill()
        self._level = min(self.capacity, self._level + amount)

    async def acquire(self, amount: float = 1.0, sleep: Sleep = asyncio.sleep) -> float:
        """Reserve ``amount`` and sleep once until it is ours; return the seconds waited."""
        wait = self.reserve(amount)
        if wait > 0:
            try:
                await sleep(wait)
            except BaseException:
                self.refund(amount)
                raise
        return wait


@dataclasses.dataclass(frozen=True, slots=True)
class ThrottleStats:
    """What a :class:`Limiter` has let through so far.

    ``tokens_charged`` counts the tokens charged against ``tokens_per_minute``: 0 without that
    limit, where no request is charged (nor its prompt counted).
    """

    calls: int
    in_flight: int
    max_in_flight: int
    rate_waits: int
    rate_wait_seconds: float
    tokens_charged: int


class Limiter:
    """At most ``max_concurrency`` calls at once, and optional per-minute request/token rates.

    >>> import asyncio
    >>> limiter = Limiter(max_concurrency=2, requests_per_minute=6000)
    >>> async def call() -> None:
    ...     async with limiter.slot(tokens=10):
    ...         await asyncio.sleep(0.01)
    >>> async def main() -> None:
    ...     await asyncio.gather(*(call() for _ in range(5)))
    >>> asyncio.run(main())
    >>> (limiter.stats.calls, limiter.stats.max_in_flight, limiter.stats.tokens_charged)
    (5, 2, 50)
    """

    def __init__(
        self,
        max_concurrency: int = 32,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be an integer >= 1; got {max_concurrency!r}")
        _check_rate("requests_per_minute", requests_per_minute)
        _check_rate("tokens_per_minute", tokens_per_minute)
        self.max_concurrency = max_concurrency
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._requests = (
            TokenBucket(requests_per_minute, clock=clock) if requests_per_minute else None
        )
        self._tokens = TokenBucket(tokens_per_minute, clock=clock) if tokens_per_minute else None
        self._sleep = sleep
        self._calls = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._rate_waits = 0
        self._rate_wait_seconds = 0.0
        self._tokens_charged = 0

    def __repr__(self) -> str:
        return (
            f"Limiter(max_concurrency={self.max_concurrency}, "
            f"requests_per_minute={self.requests_per_minute}, "
            f"tokens_per_minute={self.tokens_per_minute})"
        )

    @property
    def stats(self) -> ThrottleStats:
        return ThrottleStats(
            calls=self._calls,
            in_flight=self._in_flight,
            max_in_flight=self._max_in_flight,
            rate_waits=self._rate_waits,
            rate_wait_seconds=self._rate_wait_seconds,
            tokens_charged=self._tokens_charged,
        )

    def charge_for(self, request: LLMRequest) -> int:
        """The tokens to charge ``request``: :func:`estimate_tokens` under a tokens-per-minute
        limit, else 0 (counting a long prompt's tokens costs more CPU than sending it).

        >>> request = LLMRequest.from_prompt("Hello, world!", max_tokens=10)
        >>> Limiter(tokens_per_minute=1000).charge_for(request), Limiter().charge_for(request)
        (14, 0)
        """
        return 0 if self._tokens is None else estimate_tokens(request)

    def slot(self, tokens: int = 0, requests: int = 1) -> _Slot:
        """``async with limiter.slot(tokens):`` holds one slot (:meth:`acquire`, then
        :meth:`release` however the block ends)."""
        return _Slot(self, tokens, requests)

    async def acquire(self, tokens: int = 0, requests: int = 1) -> None:
        """Take one concurrency slot, after the rate buckets allow ``requests`` requests (one
        call that sends several, as a scored call to a completions server does) of ``tokens``.

        The slot is taken first, so a call leaves as soon as its rate wait ends and the rate
        holds for calls as they are sent. Every acquire needs one :meth:`release`.
        """
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # asyncio primitives bind to one loop; a fresh asyncio.run() gets a fresh semaphore.
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
            self._loop = loop
        await self._semaphore.acquire()
        if self._requests is not None or self._tokens is not None:
            try:
                await self._wait_for_rate(tokens, requests)
            except BaseException:
                self._semaphore.release()
                raise
        self._calls += 1
        self._tokens_charged += tokens
        self._in_flight += 1
        self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def release(self) -> None:
        """Give back a slot taken by :meth:`acquire`."""
        self._in_flight -= 1
        self._semaphore.release()

    async def _wait_for_rate(self, tokens: int, requests: int = 1) -> None:
        wait_requests = self._requests.reserve(requests) if self._requests else 0.0
        wait_tokens = self._tokens.reserve(tokens) if self._tokens else 0.0
        wait = max(wait_requests, wait_tokens)
        if wait <= 0:
            return
        try:
            await self._sleep(wait)
        except BaseException:
            if self._requests:
                self._requests.refund(requests)
            if self._tokens:
                self._tokens.refund(tokens)
            raise
        self._rate_waits += 1
        self._rate_wait_seconds += wait


class _Slot:
    """What :meth:`Limiter.slot` returns: one small object, not a generator and its wrapper."""

    __slots__ = ("_limiter", "_requests", "_tokens")

    def __init__(self, limiter: Limiter, tokens: int, requests: int = 1) -> None:
        self._limiter = limiter
        self._tokens = tokens
        self._requests = requests

    async def __aenter__(self) -> None:
        await self._limiter.acquire(self._tokens, self._requests)

    async def __aexit__(self, *exc_info: object) -> None:
        self._limiter.release()


class ThrottledRunner(WrapperRunner):
    """Wraps a runner with a :class:`Limiter`: bounded concurrency and per-minute rates.

    Each request is charged :func:`estimate_tokens` against ``tokens_per_minute``, if set.

    >>> import asyncio
    >>> from sammo_core.runners import ScriptedRunner
    >>> inner = ScriptedRunner(default="ok", latency=0.01)
    >>> runner = ThrottledRunner(inner, max_concurrency=4)
    >>> requests = [LLMRequest.from_prompt(f"q{i}") for i in range(10)]
    >>> [r.text for r in asyncio.run(runner.generate_many(requests))][:3]
    ['ok', 'ok', 'ok']
    >>> runner.stats.max_in_flight
    4
    """

    def __init__(
        self,
        inner: Runner,
        max_concurrency: int = 32,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(inner)
        self.limiter = Limiter(
            max_concurrency, requests_per_minute, tokens_per_minute, clock=clock, sleep=sleep
        )

    def __repr__(self) -> str:
        return f"ThrottledRunner({self.inner!r}, {self.limiter!r})"

    @property
    def stats(self) -> ThrottleStats:
        return self.limiter.stats

    async def generate(self, request: LLMRequest) -> LLMResult:
        if request.labels:  # a scored call may send several requests: the rates count them all
            planned = self.inner.planned_calls(request)
            tokens = sum(self.limiter.charge_for(r) for r in planned)
            async with self.limiter.slot(tokens, len(planned)):
                return await self.inner.generate(request)
        async with self.limiter.slot(self.limiter.charge_for(request)):
            return await self.inner.generate(request)
