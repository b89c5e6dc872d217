"""Explicit retries: exponential backoff with full jitter, honouring ``Retry-After``.

:class:`RetryPolicy` says how often and how long to wait; :func:`with_retries` runs one attempt
after another. An attempt asks for another try by raising :class:`RetryableError` (429, 5xx,
timeouts, dropped connections, bodies that are not JSON); any other exception ends the call at
once. When the attempts run out, :class:`~sammo_core.errors.RunnerError` names what was called,
how often, and the last failure. A :class:`RetryRecorder` passed to :func:`with_retries` counts
calls, attempts, retries by cause and the time spent waiting; its :class:`RetryStats` snapshot is
what reports show.

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
import contextlib
import dataclasses
import email.utils
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar, get_args

from sammo_core.errors import ConfigError, RunnerError

__all__ = [
    "RETRY_CAUSES",
    "RetryCause",
    "RetryEvent",
    "RetryPolicy",
    "RetryRecorder",
    "RetryStats",
    "RetryableError",
    "parse_retry_after",
    "with_retries",
]

T = TypeVar("T")

RetryCause = Literal["429", "5xx", "timeout", "dropped", "malformed", "other"]
"""Why an attempt failed: rate limited (429), a server error (5xx, 408, 409), no whole answer
within the deadline, a connection that failed or dropped, a body that is not a chat completion,
or anything else an attempt raised as retryable."""
RETRY_CAUSES: tuple[RetryCause, ...] = get_args(RetryCause)


class RetryableError(Exception):
    """One attempt failed in a way another attempt may fix.

    Args:
        message: what went wrong, for the final error (must not hold secrets).
        retry_after: seconds the server asked us to wait, if it said so.
        cause: why, for the statistics (one of :data:`RETRY_CAUSES`).
    """

    def __init__(
        self, message: str, retry_after: float | None = None, cause: RetryCause = "other"
    ) -> None:
        super().__init__(message)
        if cause not in RETRY_CAUSES:
            raise ConfigError(
                f"unknown retry cause {cause!r}; use one of {', '.join(RETRY_CAUSES)}"
            )
        self.retry_after = retry_after
        self.cause = cause


@dataclasses.dataclass(frozen=True, slots=True)
class RetryEvent:
    """Reported to ``on_retry`` before each wait: which attempt failed, why, how long we wait."""

    attempt: int
    delay: float
    failure: str
    cause: RetryCause = "other"


@dataclasses.dataclass(frozen=True)
class RetryStats:
    """What the retry layer did: the requests behind the calls a usage report counts.

    ``calls`` are calls that reached the backend, ``attempts`` the requests they sent,
    ``retries`` the attempts that failed and were tried again (``retries_by_cause`` splits them
    by :data:`RETRY_CAUSES`), ``failed`` the calls that gave up, and ``wait_seconds`` the time
    spent waiting between attempts (backoff and ``Retry-After``).

    >>> stats = RetryStats(calls=3, attempts=5, retries=2, retries_by_cause={"429": 2})
    >>> stats.to_dict()["retries_by_cause"]
    {'429': 2, '5xx': 0, 'timeout': 0, 'dropped': 0, 'malformed': 0, 'other': 0}
    >>> (stats + stats).attempts
    10
    >>> stats.summary()
    '5 requests for 3 calls; 2 retries (429: 2); waited 0.0 s'
    """

    calls: int = 0
    attempts: int = 0
    retries: int = 0
    failed: int = 0
    retries_by_cause: dict[str, int] = dataclasses.field(default_factory=dict)
    wait_seconds: float = 0.0

    def __add__(self, other: RetryStats) -> RetryStats:
        causes = {
            c: self.retries_by_cause.get(c, 0) + other.retries_by_cause.get(c, 0)
            for c in RETRY_CAUSES
        }
        return RetryStats(
            calls=self.calls + other.calls,
            attempts=self.attempts + other.attempts,
            retries=self.retries + other.retries,
            failed=self.failed + other.failed,
            retries_by_cause={c: n for c, n in causes.items() if n},
            wait_seconds=self.wait_seconds + other.wait_seconds,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view; ``retries_by_cause`` lists every cause, zeros too."""
        return {
            "calls": self.calls,
            "attempts": self.attempts,
            "retries": self.retries,
            "retries_by_cause": {c: self.retries_by_cause.get(c, 0) for c in RETRY_CAUSES},
            "failed": self.failed,
            "wait_seconds": round(self.wait_seconds, 3),
        }

    def summary(self) -> str:
        """One line for a report."""
        causes = ", ".join(
            f"{c}: {n}" for c in RETRY_CAUSES if (n := self.retries_by_cause.get(c, 0))
        )
        failed = f"; {self.failed} failed" if self.failed else ""
        return (
            f"{self.attempts:,} requests for {self.calls:,} calls; {self.retries:,} retries"
            + (f" ({causes})" if causes else "")
            + failed
            + f"; waited {self.wait_seconds:.1f} s"
        )


class RetryRecorder:
    """Counts what :func:`with_retries` does; :meth:`snapshot` returns a :class:`RetryStats`.

    >>> recorder = RetryRecorder()
    >>> recorder.on_retry(RetryEvent(attempt=1, delay=0.5, failure="HTTP 503", cause="5xx"))
    >>> recorder.snapshot().retries_by_cause, recorder.snapshot().wait_seconds
    ({'5xx': 1}, 0.5)
    """

    def __init__(self) -> None:
        self.calls = self.attempts = self.retries = self.failed = 0
        self.wait_seconds = 0.0
        self._by_cause: dict[str, int] = {}

    def on_retry(self, event: RetryEvent) -> None:
        """Count one failed attempt that will be retried after ``event.delay`` seconds."""
        self.retries += 1
        self._by_cause[event.cause] = self._by_cause.get(event.cause, 0) + 1
        self.wait_seconds += event.delay

    def snapshot(self) -> RetryStats:
        return RetryStats(
            calls=self.calls,
            attempts=self.attempts,
            retries=self.retries,
            failed=self.failed,
            retries_by_cause={c: self._by_cause[c] for c in RETRY_CAUSES if c in self._by_cause},
            wait_seconds=self.wait_seconds,
        )


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
        if retry_after is not None and math.isfinite(retry_after):
            return min(max(retry_after, 0.0), self.max_retry_after)
        bound = min(self.max_delay, self.base_delay * 2.0 ** min(retry - 1, 64))
        if not self.jitter:
            return bound
        return (rng or self.make_rng()).uniform(0.0, bound)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds a response asks us to wait: ``retry-after-ms``, or ``Retry-After`` as seconds or
    an HTTP date; ``None`` when absent or unreadable.

    A value that is no wait a server could mean (``nan``, ``inf``, a negative number, words) is
    unreadable: the retry then waits its own backoff, as without the header. A date already
    past means no wait.

    >>> parse_retry_after({"retry-after": "2"})
    2.0
    >>> parse_retry_after({"retry-after-ms": "150", "retry-after": "1"})
    0.15
    >>> parse_retry_after({}) is None
    True
    >>> [parse_retry_after({"retry-after": v}) for v in ("nan", "inf", "1e999", "-5", "soon")]
    [None, None, None, None, None]
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            with contextlib.suppress(ValueError):
                milliseconds = _seconds(lowered["retry-after-ms"])
                if milliseconds is not None:
                    return milliseconds / 1000.0
        value = lowered.get("retry-after")
        if value is None:
            return None
        try:
            return _seconds(value)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(when.timestamp() - (time.time() if now is None else now), 0.0)
    except (ValueError, TypeError, OverflowError):
        return None


def _seconds(text: str) -> float | None:
    """``text`` as a finite number >= 0, else ``None``; ``ValueError`` if it is no number."""
    number = float(text)
    return number if math.isfinite(number) and number >= 0 else None


async def with_retries(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    describe: str,
    *,
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    on_retry: Callable[[RetryEvent], None] | None = None,
    recorder: RetryRecorder | None = None,
) -> T:
    """Await ``fn()`` until it returns, retrying on :class:`RetryableError` per ``policy``.

    Args:
        fn: one attempt; raises :class:`RetryableError` to ask for another.
        policy: how many attempts and how long to wait.
        describe: what is called, for the final error, e.g. ``"model 'x' at https://..."``.
        rng: the jitter source (default ``policy.make_rng()``).
        sleep: the wait (tests may pass a fake).
        on_retry: told about each failed attempt that will be retried.
        recorder: counts the call, its attempts, retries by cause and waits.

    Raises:
        RunnerError: after ``policy.max_attempts`` failed attempts, chained to the last failure.
    """
    rng = rng or policy.make_rng()
    last: RetryableError | None = None
    if recorder is not None:
        recorder.calls += 1
    for attempt in range(1, policy.max_attempts + 1):
        if recorder is not None:
            recorder.attempts += 1
        try:
            return await fn()
        except RetryableError as exc:
            last = exc
            if attempt == policy.max_attempts:
                break
            delay = policy.delay(attempt, rng, exc.retry_after)
            event = RetryEvent(attempt, delay, str(exc), exc.cause)
            if recorder is not None:
                recorder.on_retry(event)
            if on_retry is not None:
                on_retry(event)
            await sleep(delay)
        except Exception:  # not retryable (a cancelled call is not a failure)
            if recorder is not None:
                recorder.failed += 1
            raise
    if recorder is not None:
        recorder.failed += 1
    attempts = f"{policy.max_attempts} attempt{'s' if policy.max_attempts > 1 else ''}"
    raise RunnerError(f"{describe} failed after {attempts}; last failure: {last}") from last
