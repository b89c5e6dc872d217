"""Explicit retries: exponential backoff with full jitter, honouring ``Retry-After``.

:class:`RetryPolicy` says how often and how long to wait; :func:`with_retries` runs one attempt
after another. An attempt asks for another try by raising :class:`RetryableError` (429, 5xx,
timeouts, dropped connections, bodies that are not JSON); any other exception ends the call at
once. When the attempts run out, :class:`~sammo_core.errors.RunnerError` names what was called,
how often, and the last failure.

>>> import asyncio
>>> failures = ["HTTP 503", "HTTP 429"]
>>> async def flaky() -> str:
...     if failures:
...         raise RetryableError(failures.pop(0))
...     return "ok"
>>> policy = RetryPolicy(max_attempts=3, base_delay=0.001, seed=0)
>>> asyncio.run(with_retries(flaky, policy, "model 'm' at http://127.0.0.1:1/v1"))
'ok'
>>> async def broken() -> str:
...     raise RetryableError("HTTP 500: boom")
>>> asyncio.run(with_retries(broken, policy, "model 'm' at http://127.0.0.1:1/v1"))
Traceback (most recent call last):
...
sammo_core.errors.RunnerError: model 'm' at http://127.0.0.1:1/v1 failed after 3 attempts; \
last failure: HTTP 500: boom
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from sammo_core.errors import ConfigError, RunnerError

__all__ = ["RetryEvent", "RetryPolicy", "RetryableError", "parse_retry_after", "with_retries"]

T = TypeVar("T")


class RetryableError(Exception):
    """One attempt failed in a way another attempt may fix.

    Args:
        message: what went wrong, for the final error (must not hold secrets).
        retry_after: seconds the server asked us to wait, if it said so.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclasses.dataclass(frozen=True, slots=True)
class RetryEvent:
    """Reported to ``on_retry`` before each wait: which attempt failed, why, how long we wait."""

    attempt: int
    delay: float
    failure: str


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts, and how long to wait between them.

    The wait before retry ``n`` (from 1) is drawn uniformly from ``[0, min(max_delay,
    base_delay * 2 ** (n - 1))]`` ("full jitter"), or is exactly that bound with
    ``jitter=False``. A server's ``Retry-After`` replaces the computed wait (the server knows
    best), capped at ``max_retry_after``. ``seed`` makes the jitter reproducible; ``None`` draws
    it from the OS.

    >>> policy = RetryPolicy(base_delay=0.5, max_delay=4.0, jitter=False)
    >>> [policy.delay(n) for n in (1, 2, 3, 4, 5)]
    [0.5, 1.0, 2.0, 4.0, 4.0]
    >>> policy.delay(1, retry_after=10.0), policy.delay(1, retry_after=3600.0)
    (10.0, 120.0)
    >>> RetryPolicy(max_attempts=0)
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: max_attempts must be >= 1 (1 means no retries); got 0
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: bool = True
    seed: int | None = None
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(
                f"max_attempts must be >= 1 (1 means no retries); got {self.max_attempts}"
            )
        if not self.base_delay >= 0 or math.isinf(self.base_delay):
            raise ConfigError(f"base_delay must be a finite number >= 0; got {self.base_delay}")
        if not self.max_delay >= self.base_delay or math.isinf(self.max_delay):
            raise ConfigError(
                f"max_delay must be finite and >= base_delay ({self.base_delay}); "
                f"got {self.max_delay}"
            )
        if not self.max_retry_after >= 0 or math.isinf(self.max_retry_after):
            raise ConfigError(
                f"max_retry_after must be a finite number >= 0; got {self.max_retry_after}"
            )

    def make_rng(self, key: str = "") -> random.Random:
        """The jitter source for one call; with a seed, the same ``key`` gives the same waits."""
        return random.Random(f"{self.seed}:{key}") if self.seed is not None else random.Random()

    def delay(
        self, retry: int, rng: random.Random | None = None, retry_after: float | None = None
    ) -> float:
        """Seconds to wait before retry number ``retry`` (from 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        bound = min(self.max_delay, self.base_delay * 2.0 ** min(retry - 1, 64))
        if not self.jitter:
            return bound
        return (rng or self.make_rng()).uniform(0.0, bound)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds a response asks us to wait: ``retry-after-ms``, or ``Retry-After`` as seconds or
    an HTTP date; ``None`` when absent or unreadable.

    >>> parse_retry_after({"retry-after": "2"})
    2.0
    >>> parse_retry_after({"retry-after-ms": "150", "retry-after": "1"})
    0.15
    >>> parse_retry_after({}) is None
    True
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return max(float(lowered["retry-after-ms"]) / 1000.0, 0.0)
        value = lowered.get("retry-after")
        if value is None:
            return None
        try:
            return max(float(value), 0.0)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(when.timestamp() - (time.time() if now is None else now), 0.0)
    except (ValueError, TypeError, OverflowError):
        return None


async def with_retries(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    describe: str,
    *,
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    on_retry: Callable[[RetryEvent], None] | None = None,
) -> T:
    """Await ``fn()`` until it returns, retrying on :class:`RetryableError` per ``policy``.

    Args:
        fn: one attempt; raises :class:`RetryableError` to ask for another.
        policy: how many attempts and how long to wait.
        describe: what is called, for the final error, e.g. ``"model 'x' at https://..."``.
        rng: the jitter source (default ``policy.make_rng()``).
        sleep: the wait (tests may pass a fake).
        on_retry: told about each failed attempt that will be retried.

    Raises:
        RunnerError: after ``policy.max_attempts`` failed attempts, chained to the last failure.
    """
    rng = rng or policy.make_rng()
    last: RetryableError | None = None
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return await fn()
        except RetryableError as exc:
            last = exc
            if attempt == policy.max_attempts:
                break
            delay = policy.delay(attempt, rng, exc.retry_after)
            if on_retry is not None:
                on_retry(RetryEvent(attempt, delay, str(exc)))
            await sleep(delay)
    attempts = f"{policy.max_attempts} attempt{'s' if policy.max_attempts > 1 else ''}"
    raise RunnerError(f"{describe} failed after {attempts}; last failure: {last}") from last
