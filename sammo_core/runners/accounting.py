"""Exact usage accounting and call, token and dollar budgets that hold, for any runner.

:class:`AccountingRunner` wraps a runner (usually outside a
:class:`~sammo_core.runners.cache.CachedRunner`) and counts every call: calls sent to the model,
tokens and dollars spent, and cache hits with the tokens they saved. With a :class:`CallBudget` it
reserves an upper bound of each call's cost before sending it (:func:`prompt_token_bound` plus
``max_tokens``) and refuses a call that could exceed the budget with
:class:`BudgetExceededError`; the work done so far is kept, so a search can stop and report its
best candidate. A :class:`UsageJournal` makes the usage durable per call, so an interrupted and
resumed run never spends past its budget. :class:`Ledger` states the guarantee.

>>> import asyncio
>>> from sammo_core.runners import LLMRequest, ScriptedRunner
>>> scripted = ScriptedRunner(default="ok", model="gpt-4o-mini")
>>> runner = AccountingRunner(scripted, CallBudget(calls=2))
>>> request = LLMRequest.from_prompt("Say ok")
>>> _ = asyncio.run(runner.generate_many([request, request]))
>>> asyncio.run(runner.generate(request))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
sammo_core.errors.BudgetExceededError: calls budget exhausted: 2 used + 1 more would exceed ...
>>> (runner.usage.calls, runner.usage.prompt_tokens, runner.usage.completion_tokens)
(2, 4, 2)
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from sammo_core.errors import BudgetExceededError, CacheMissError, ConfigError
from sammo_core.run_files import check_not_linked, open_append
from sammo_core.runners.base import LLMRequest, LLMResult, Runner, WrapperRunner
from sammo_core.runners.pricing import estimate_cost

__all__ = [
    "TEMPLATE_TOKENS_PER_MESSAGE",
    "TEMPLATE_TOKENS_PER_REQUEST",
    "AccountingRunner",
    "Budget",
    "CallBudget",
    "CompletionCap",
    "Ledger",
    "Reservation",
    "Usage",
    "UsageJournal",
    "accounted",
    "prompt_token_bound",
]


@dataclasses.dataclass(frozen=True, slots=True)
class CallBudget:
    """Upper limits on calls sent to the model, tokens spent and estimated dollars.

    ``None`` means no limit. Cache hits cost nothing and count against no limit.

    >>> CallBudget(calls=100, usd=0.5)
    CallBudget(calls=100, tokens=None, usd=0.5)
    >>> CallBudget(calls=0)
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: CallBudget(calls=...) must be a positive int or None; got 0
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
                    f"CallBudget({name}=...) must be a positive int or None; got {value!r}"
                )
        usd = self.usd
        if usd is not None and (
            isinstance(usd, bool) or not isinstance(usd, int | float) or not usd > 0
        ):
            raise ConfigError(f"CallBudget(usd=...) must be a positive number or None; got {usd!r}")


#: The old name of :class:`CallBudget`, kept for one release so that code written for it runs
#: (deprecated: ``Budget`` beside :class:`~search.budget.SearchBudget` did not say what it
#: limits; this one limits what a runner's calls spend).
Budget = CallBudget


@dataclasses.dataclass(frozen=True, slots=True)
class Usage:
    """What a runner used: calls sent, cache hits, tokens spent and saved, dollars, wall time.

    ``wall_seconds`` is the time during which at least one call was in flight (concurrent calls
    overlap, so it is not their sum). ``estimated_calls`` counts the calls whose token counts
    are estimates, not the server's (it reported none, or impossible ones: see
    ``LLMResult.usage_estimated``). Usages add up field by field.

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
    estimated_calls: int = 0

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
        # Field by field, spelled out: this runs for every call (ledger, tabs, reports).
        return Usage(
            self.calls + other.calls,
            self.cache_hits + other.cache_hits,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.saved_prompt_tokens + other.saved_prompt_tokens,
            self.saved_completion_tokens + other.saved_completion_tokens,
            self.usd + other.usd,
            self.wall_seconds + other.wall_seconds,
            self.estimated_calls + other.estimated_calls,
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
            + (
                f" ({self.estimated_calls:,} calls' tokens estimated)"
                if self.estimated_calls
                else ""
            )
        )


#: Tokens a chat template may add once per request (BOS, a default system prompt, the header
#: of the answer) and per message (role header, end-of-turn marker); see prompt_token_bound.
TEMPLATE_TOKENS_PER_REQUEST = 64
TEMPLATE_TOKENS_PER_MESSAGE = 8


class _Unsent(Exception):
    """A call stopped before it was sent (cancelled while its journal line was being synced)."""


# Errors raised before anything reaches a model: the call they end cost nothing.
_NOT_SENT = (BudgetExceededError, CacheMissError, ConfigError, _Unsent)


def prompt_token_bound(request: LLMRequest) -> int:
    """An upper bound of the prompt tokens a model counts for ``request``.

    Byte-level tokenizers (GPT, Llama 3, Qwen, SmolLM; SentencePiece with byte fallback)
    never make a token out of less than one UTF-8 byte, so a message costs at most its length
    in bytes plus what the chat template adds around it: at most
    :data:`TEMPLATE_TOKENS_PER_MESSAGE` per message and :data:`TEMPLATE_TOKENS_PER_REQUEST`
    once. (:func:`~sammo_core.tokens.count_tokens` is an estimate, not a bound: it counts words.)

    A soft prompt's learned embeddings are tokens the model reads beyond the text: each adds
    its ``n_tokens`` (its placeholder's bytes are counted too, so the bound stays a bound).

    >>> prompt_token_bound(LLMRequest.from_prompt("Hello, world!"))  # 13 bytes + 8 + 64
    85
    """
    content = sum(len(m.content.encode("utf-8")) for m in request.messages)
    soft = sum(tensor.shape[0] for tensor in request.soft_prompts)
    return (
        content
        + soft
        + TEMPLATE_TOKENS_PER_MESSAGE * len(request.messages)
        + TEMPLATE_TOKENS_PER_REQUEST
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Reservation:
    """The most one request can cost: its prompt bound, its completion cap, their price, and
    the calls it makes (one, or one per planned call: see ``Runner.planned_calls``)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    usd: float = 0.0
    calls: int = 1

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_usage(self) -> Usage:
        """The usage charged for a call that may have been answered but did not report back."""
        return Usage(
            calls=self.calls,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            usd=self.usd,
        )


# What a cache hit books when the ledger counts hits as calls: one call, nothing paid.
_HIT = Reservation(0, 0, 0.0, 1)


class UsageJournal:
    """An append-only file that makes usage durable per call, so no crash or resume hides one.

    Before a request leaves, its :class:`Reservation` is written (a ``sent`` line) and made
    durable (:meth:`durable`: fsync'ed unless ``fsync=False``); when the call settles, what it
    used (``done``). Calls in flight share their fsyncs (group commit): a burst of calls
    booked in one turn of the event loop costs one fsync, not one each (see :meth:`durable`).
    A ``done`` line is flushed at once and fsync'ed with the next group or on :meth:`close`:
    a crash before that counts the call at its reservation, never less than it cost. Reading
    the file back gives the usage of every
    session that wrote to it: a ``sent`` line without its ``done`` (the process was killed with
    the call in flight) counts as one call that spent all it reserved, since the model may have
    answered it. A torn last line (killed while writing it) is dropped: its call was not sent.
    ``tag`` names the run; opening a journal written under another tag raises
    :class:`~sammo_core.errors.ConfigError`.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "usage.jsonl"
    >>> with UsageJournal(path, tag="run-1") as journal:
    ...     journal.sent(0, Reservation(90, 10))
    ...     journal.done(0, Usage(calls=1, prompt_tokens=12, completion_tokens=3))
    ...     journal.sent(1, Reservation(90, 10))  # and then the process is killed
    >>> again = UsageJournal(path, tag="run-1")
    >>> (again.usage.calls, again.usage.prompt_tokens, again.usage.completion_tokens)
    (2, 102, 13)
    >>> again.close()
    """

    def __init__(self, path: str | Path, *, tag: str = "", fsync: bool = True) -> None:
        self.path = Path(path)
        self.tag = tag
        self.fsync = fsync
        check_not_linked(self.path.parent, self.path.name)  # never truncate or append elsewhere
        self.usage, self.next_id, tags = _replay(self.path)
        if tags and tags[-1] != tag:
            raise ConfigError(
                f"the usage journal {self.path} belongs to run {tags[-1]!r}, not {tag!r}; "
                "use a new output directory or delete the file to start over"
            )
        self._file = open_append(self.path.parent, self.path.name)
        self._written = 0  # lines written; lines 1..synced are on disk
        self._synced = 0
        self._write({"kind": "open", "tag": tag, "next_id": self.next_id})
        # The fsync shared by the calls of this turn of the event loop (see durable).
        self._flush: asyncio.Future[None] | None = None
        self.sync()

    def __enter__(self) -> UsageJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"UsageJournal({str(self.path)!r}, tag={self.tag!r})"

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(orjson.dumps(record) + b"\n")
        self._file.flush()
        self._written += 1
        if not self.fsync:
            self._synced = self._written

    @property
    def durable_lines(self) -> int:
        """How many of the lines this session wrote are known to be on disk."""
        return self._synced

    def sync(self) -> None:
        """Make every line written so far durable, now (blocking)."""
        if self._synced < self._written:
            upto = self._written
            os.fsync(self._file.fileno())
            self._synced = max(self._synced, upto)

    async def durable(self) -> None:
        """Wait until every line written so far is on disk, sharing the fsync with the other
        calls waiting: one fsync on the event loop after the callbacks of this turn, for
        every call that wrote its line meanwhile, so a call leaves one turn after it was
        booked, in an order that depends on nothing but the order of events.

        (Rounds of fsyncs in a worker thread kept the loop free of the disk, but each round's
        answer waited for the loop, which was reading the answers that freed the slots: a
        round of 32 calls at 50 ms left its slots idle ~8 ms. An fsync takes ~0.1 ms on a
        local disk; on a slow one it holds the loop once per turn, as rounds held the calls.)
        """
        if self._synced >= self._written:
            return
        loop = asyncio.get_running_loop()
        if self._flush is not None and self._flush.get_loop() is not loop:
            self.sync()  # a turn of another event loop: not ours to wait for
            return
        if self._flush is None:
            self._flush = loop.create_future()
            loop.call_soon(self._flush_now, self._flush)
        await asyncio.shield(self._flush)  # a waiter cancelled leaves the others waiting

    def _flush_now(self, flush: asyncio.Future[None]) -> None:
        """The fsync of one turn of the event loop, for every call that waits on ``flush``."""
        self._flush = None
        try:
            self.sync()
        except OSError as exc:  # the waiting calls fail as a blocking sync would
            flush.set_exception(exc)
        else:
            flush.set_result(None)

    def sent(self, call_id: int, reservation: Reservation) -> None:
        """Record, before it leaves, that call ``call_id`` may cost up to ``reservation``."""
        self._write({"kind": "sent", "id": call_id, **dataclasses.asdict(reservation)})

    def done(self, call_id: int, used: Usage) -> None:
        """Record what call ``call_id`` used (its ``sent`` line no longer counts)."""
        self._write({"kind": "done", "id": call_id, "usage": used.to_dict()})

    def carry(self, used: Usage) -> None:
        """Record usage spent before this journal existed (e.g. read from an old checkpoint)."""
        self._write({"kind": "carry", "usage": used.to_dict()})
        self.sync()
        self.usage = self.usage + used

    def close(self) -> None:
        if not self._file.closed:
            self.sync()
            self._file.close()


_MAX_COUNT = 2**63 - 1  # ids and counts are written back as JSON integers
_USAGE_AMOUNTS = frozenset(("usd", "wall_seconds"))
#: Every other field of Usage is a count (so a field added to Usage is read back too).
_USAGE_COUNTS = frozenset(f.name for f in dataclasses.fields(Usage)) - _USAGE_AMOUNTS


def _count(value: Any, name: str) -> int:
    """A count read from a journal: a whole number from 0 to 2**63 - 1 (else ValueError)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_COUNT:
        raise ValueError(f"{name} {value!r} is not a whole number from 0 to 2**63 - 1")
    return value


def _amount(value: Any, name: str) -> float:
    """Dollars or seconds read from a journal: a finite number >= 0 (else ValueError)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} {value!r} is not a number")
    if not 0 <= value < 1e18:  # also refuses nan
        raise ValueError(f"{name} {value!r} is not a finite number >= 0")
    return float(value)


def _journal_usage(data: Any) -> Usage:
    """The usage of a ``done`` or ``carry`` record, every field checked (else ValueError)."""
    if not isinstance(data, dict):
        raise ValueError(f"usage {data!r} is not an object")
    unknown = set(data) - _USAGE_COUNTS - _USAGE_AMOUNTS
    if unknown:
        raise ValueError(f"usage has unknown fields {sorted(unknown)}")
    checked: dict[str, Any] = {
        k: _count(v, k) if k in _USAGE_COUNTS else _amount(v, k) for k, v in data.items()
    }
    return Usage(**checked)


def _replay(path: Path) -> tuple[Usage, int, list[str]]:
    """Usage, the next free call id and the run tags of a journal file (empty if missing)."""
    if not path.is_file():
        return Usage(), 0, []
    data = path.read_bytes()
    complete = data.rfind(b"\n") + 1
    if complete < len(data):  # a torn last line: its call was never sent
        with path.open("r+b") as f:
            f.truncate(complete)
    used, next_id, tags = Usage(), 0, []
    pending: dict[int, Reservation] = {}
    for number, line in enumerate(data[:complete].splitlines(), start=1):
        try:
            record = orjson.loads(line)
            kind = record["kind"]
            if kind == "open":
                tags.append(record["tag"])
            elif kind == "sent":
                call_id = _count(record["id"], "id")
                pending[call_id] = Reservation(
                    _count(record["prompt_tokens"], "prompt_tokens"),
                    _count(record["completion_tokens"], "completion_tokens"),
                    _amount(record["usd"], "usd"),
                    # journals written before requests made several calls have no "calls"
                    _count(record.get("calls", 1), "calls"),
                )
                next_id = max(next_id, call_id + 1)
            elif kind == "carry":
                used = used + _journal_usage(record["usage"])
            elif kind == "done":
                call_id = _count(record["id"], "id")
                pending.pop(call_id, None)
                used = used + _journal_usage(record["usage"])
                next_id = max(next_id, call_id + 1)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"line {number} of the usage journal {path} is not a journal record ({exc}); "
                "the file was edited by hand? Restore it or use a new output directory"
            ) from exc
    for reservation in pending.values():
        used = used + reservation.as_usage()
    return used, next_id, tags


class Ledger:
    """Usage, reservations and the budget that one or more :class:`AccountingRunner` s share.

    Give the task runner and a proposer runner the same ledger to enforce one budget over
    both and to read their combined usage. With a :class:`UsageJournal`, the ledger starts
    from the usage the journal holds and writes every call to it.

    **The guarantee.** A call is let through only if what was spent, plus what calls in
    flight reserved, plus its own reservation fits every limit; otherwise it waits for calls
    in flight to settle, and is refused with :class:`BudgetExceededError` once what was spent
    plus its reservation no longer fits. A reservation is an upper bound of what the request
    can cost, summed over the calls the runner plans for it (``Runner.planned_calls``: one,
    or one per label where a completions server scores labels): :func:`prompt_token_bound`
    tokens in, ``max_tokens`` out, their price, and the number of calls. So the
    spent usage never exceeds a limit, as long as the backend tokenizes at least one byte per
    token, its template stays within the allowance of :func:`prompt_token_bound`, and it
    honours ``max_tokens``; a backend reporting more than was reserved is recorded as it
    reported (usage stays truthful) and leaves less for later calls. A call that raises after
    it was sent counts as one call at its full reservation (the model may have answered and
    billed it), except errors raised before anything was sent (budget, configuration, a
    replay cache's miss), which count nothing.

    With ``hits_are_calls=True`` a calls limit counts the calls asked for, answered by a
    cache or not (``calls + cache_hits``), so what a search may do does not depend on what a
    cache holds; tokens and dollars still count only what was paid.

    >>> from sammo_core.runners import ScriptedRunner
    >>> shared = Ledger(CallBudget(calls=10))
    >>> task = AccountingRunner(ScriptedRunner(default="a"), ledger=shared)
    >>> proposer = AccountingRunner(ScriptedRunner(default="b"), ledger=shared)
    >>> task.budget is proposer.budget
    True
    """

    def __init__(
        self,
        budget: CallBudget | None = None,
        used: Usage | None = None,
        journal: UsageJournal | None = None,
        *,
        hits_are_calls: bool = False,
    ) -> None:
        if used is not None and journal is not None:
            raise ConfigError("pass used=... or journal=... to a Ledger, not both")
        self.budget = budget
        self.journal = journal
        self.hits_are_calls = hits_are_calls
        self._lock = threading.Lock()
        if journal is not None:
            used = journal.usage
        self._used = used if used is not None else Usage()  # e.g. restored from a checkpoint
        self._next_id = journal.next_id if journal is not None else 0
        self._tickets: dict[int, Reservation | None] = {}
        self._reserved = Reservation()
        self._reserved_calls = 0
        self._active = 0
        self._busy_since = 0.0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def usage(self) -> Usage:
        """A snapshot of the usage so far (calls in flight are not in it yet)."""
        with self._lock:
            used = self._used
            if self._active:
                elapsed = time.perf_counter() - self._busy_since
                used = dataclasses.replace(used, wall_seconds=used.wall_seconds + elapsed)
            return used

    def _fits(self, reservation: Reservation) -> bool:
        """Whether ``reservation`` fits beside those in flight; raise if it never will."""
        budget, used = self.budget, self._used
        if budget is None:
            return True
        calls = used.calls + (used.cache_hits if self.hits_are_calls else 0)
        checks: list[tuple[str, float | None, float, float, float]] = [
            ("calls", budget.calls, calls, self._reserved_calls, reservation.calls),
            ("tokens", budget.tokens, used.total_tokens, self._reserved.tokens, reservation.tokens),
            ("usd", budget.usd, used.usd, self._reserved.usd, reservation.usd),
        ]
        fits = True
        for name, limit, spent, in_flight, more in checks:
            if limit is None:
                continue
            if spent + more > limit:
                raise BudgetExceededError(
                    f"{name} budget exhausted: {_fmt(spent)} used + {_fmt(more)} more would "
                    f"exceed the {_fmt(limit)} allowed (CallBudget({name}={limit!r})); work done "
                    "so far is kept. Raise the budget or reuse a cache to go on."
                )
            fits = fits and spent + in_flight + more <= limit
        return fits

    async def durable(self) -> None:
        """Wait until the journal (if any) holds every call booked so far on disk."""
        if self.journal is not None:
            await self.journal.durable()

    async def reserve(self, reservation: Reservation | None) -> int:
        """Book one call and return its ticket; ``None`` books a free call (a cache hit).

        Waits while calls in flight hold the room this one needs; raises
        :class:`BudgetExceededError` when the budget can no longer pay for it. With
        ``hits_are_calls``, a cache hit takes one call of the calls limit like any other.
        """
        if reservation is None and self.hits_are_calls:
            reservation = _HIT
        while True:
            with self._lock:
                if reservation is None or self._fits(reservation):
                    return self._book(reservation)
                loop = asyncio.get_running_loop()
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, waiter))
            await waiter

    def _book(self, reservation: Reservation | None) -> int:
        ticket = self._next_id
        self._next_id += 1
        self._tickets[ticket] = reservation
        if reservation is not None:
            self._reserved_calls += reservation.calls
            self._reserved = Reservation(
                self._reserved.prompt_tokens + reservation.prompt_tokens,
                self._reserved.completion_tokens + reservation.completion_tokens,
                self._reserved.usd + reservation.usd,
            )
            if self.journal is not None and reservation is not _HIT:  # a hit pays nothing
                self.journal.sent(ticket, reservation)
        if self._active == 0:
            self._busy_since = time.perf_counter()
        self._active += 1
        return ticket

    def settle(
        self,
        ticket: int,
        result: LLMResult | None,
        error: BaseException | None = None,
        model: str = "",
    ) -> Usage:
        """Swap the reservation of ``ticket`` for what the call used; return that usage.

        ``result`` is the call's answer, or ``None`` if it raised ``error``. ``model`` prices
        results that name no model and report no cost.
        """
        with self._lock:
            reservation = self._tickets.pop(ticket)
            delta = Usage()
            if result is not None and result.cached:
                delta = Usage(
                    cache_hits=1,
                    saved_prompt_tokens=result.prompt_tokens,
                    saved_completion_tokens=result.completion_tokens,
                )
            elif result is not None:
                extra_calls, extra_prompt, extra_completion = result.overhead
                prompt = result.prompt_tokens + extra_prompt
                completion = result.completion_tokens + extra_completion
                cost = result.cost_usd or estimate_cost(result.model or model, prompt, completion)
                delta = Usage(
                    calls=result.calls + extra_calls,
                    prompt_tokens=prompt,
                    completion_tokens=completion,
                    usd=cost or 0.0,
                    estimated_calls=result.calls if result.usage_estimated else 0,
                )
            elif (
                reservation is not None
                and reservation is not _HIT
                and not isinstance(error, _NOT_SENT)
            ):
                delta = reservation.as_usage()
            if reservation is not None:
                self._reserved_calls -= reservation.calls
                self._reserved = Reservation(
                    self._reserved.prompt_tokens - reservation.prompt_tokens,
                    self._reserved.completion_tokens - reservation.completion_tokens,
                    self._reserved.usd - reservation.usd,
                )
            self._active -= 1
            if self._active == 0:
                wall = time.perf_counter() - self._busy_since
                delta = dataclasses.replace(delta, wall_seconds=wall)
            self._used = self._used + delta
            if self.journal is not None and (reservation is not None or delta != Usage()):
                self.journal.done(ticket, delta)
            waiters, self._waiters = self._waiters, []
        for loop, waiter in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_wake, waiter)
        return delta


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class AccountingRunner(WrapperRunner):
    """Counts what ``inner`` uses and enforces an optional :class:`CallBudget` (see
    :class:`Ledger`).

    Each call reserves an upper bound of its cost on the ledger before it is sent and settles
    it with the exact figures when it returns, so any number of concurrent calls cannot
    overshoot a limit. A request without ``max_tokens`` is sent with ``default_max_tokens``;
    if it has no cap at all and the budget limits tokens (or dollars of a priced model), it is
    refused with :class:`~sammo_core.errors.ConfigError`, since nothing bounds its answer.
    A result with ``cached=True`` counts as a cache hit: its tokens are saved, not spent. When
    ``inner`` is a :class:`~sammo_core.runners.cache.CachedRunner` (it has ``will_hit``), a
    request it will answer from the cache passes even a used-up budget (unless the ledger
    counts hits as calls: then it takes one call of the calls limit). The cost is
    ``LLMResult.cost_usd`` when the runner sets it, else
    :func:`~sammo_core.runners.pricing.estimate_cost` (zero for unpriced models, so a dollar
    budget does not limit those).
    """

    def __init__(
        self,
        inner: Runner,
        budget: CallBudget | None = None,
        ledger: Ledger | None = None,
        *,
        default_max_tokens: int | None = None,
    ) -> None:
        if ledger is not None and budget is not None and ledger.budget != budget:
            raise ConfigError("pass the budget to the shared Ledger, not to each AccountingRunner")
        if default_max_tokens is not None and default_max_tokens < 1:
            raise ConfigError(f"default_max_tokens must be >= 1 or None; got {default_max_tokens}")
        super().__init__(inner)
        self.ledger = ledger if ledger is not None else Ledger(budget)
        self.default_max_tokens = default_max_tokens

    @property
    def budget(self) -> CallBudget | None:
        return self.ledger.budget

    def __repr__(self) -> str:
        return f"AccountingRunner({self.inner!r}, budget={self.budget!r})"

    @property
    def usage(self) -> Usage:
        """A snapshot of the ledger's usage (shared with other runners on the same ledger)."""
        return self.ledger.usage

    def reservation(self, request: LLMRequest) -> Reservation:
        """The most ``request`` can cost (see :func:`prompt_token_bound`), summed over the
        calls the inner runner plans for it (``Runner.planned_calls``)."""
        budget, model = self.ledger.budget, self.inner.model
        calls = self.inner.planned_calls(request)
        prompt = completion = 0
        for call in calls:
            if call.max_tokens is None and budget is not None:
                priced = estimate_cost(model, 1, 1) is not None
                if budget.tokens is not None or (budget.usd is not None and priced):
                    limit = "tokens" if budget.tokens is not None else "usd"
                    raise ConfigError(
                        f"a request without max_tokens can answer at any length, so the "
                        f"{limit} budget (CallBudget({limit}={getattr(budget, limit)!r})) cannot "
                        "hold; set max_tokens (GenerateText(max_tokens=...)) or "
                        "AccountingRunner(default_max_tokens=...)"
                    )
            prompt += prompt_token_bound(call)
            completion += call.max_tokens or 0
        usd = estimate_cost(model, prompt, completion) or 0.0
        return Reservation(prompt, completion, usd, len(calls))

    def planned_calls(self, request: LLMRequest) -> tuple[LLMRequest, ...]:
        """The inner runner's calls for ``request`` (with ``default_max_tokens`` applied)."""
        if request.max_tokens is None and self.default_max_tokens is not None:
            request = dataclasses.replace(request, max_tokens=self.default_max_tokens)
        return self.inner.planned_calls(request)

    async def generate(self, request: LLMRequest) -> LLMResult:
        if request.max_tokens is None and self.default_max_tokens is not None:
            request = dataclasses.replace(request, max_tokens=self.default_max_tokens)
        # A wrapped cache that will answer costs nothing, so no budget can refuse it. There is
        # no await between this check and the inner call, so the answer still holds then.
        free = self.inner.will_hit(request)
        ticket = await self.ledger.reserve(None if free else self.reservation(request))
        if free and self.ledger.hits_are_calls and not self.inner.will_hit(request):
            # It waited for room, and the identical call in flight it was to share failed.
            self.ledger.settle(ticket, None, _Unsent(), self.inner.model)
            free = False
            ticket = await self.ledger.reserve(self.reservation(request))
        if not free:
            try:  # its sent line on disk before it leaves (group commit: see UsageJournal)
                await self.ledger.durable()
            except BaseException:
                self.ledger.settle(ticket, None, _Unsent(), self.inner.model)
                raise
        result: LLMResult | None = None
        error: BaseException | None = None
        try:
            result = await self.inner.generate(request)
        except BaseException as exc:
            error = exc
            raise
        finally:
            self.ledger.settle(ticket, result, error, self.inner.model)
        return result

    async def aclose(self) -> None:
        """Close the inner runner."""
        await self.inner.aclose()


def accounted(
    runner: Runner, ledger: Ledger, *, default_max_tokens: int | None = None
) -> AccountingRunner:
    """``runner``'s calls counted and limited on ``ledger``, with one accounting layer.

    A caller that owns a ledger (a search, with its budget and per-candidate tabs) takes the
    runner stack it is given as it is: when the stack's top is an :class:`AccountingRunner`
    without a budget of its own (the stack :func:`~sammo_core.runners.factory.build_stack`
    makes), the layers below it are counted on ``ledger`` instead of being wrapped in a second
    accounting layer, so no call is reserved or counted twice. Any other runner, or an
    accounting runner whose budget must still hold, is wrapped.

    >>> from sammo_core.runners.scripted import ScriptedRunner
    >>> scripted = ScriptedRunner(default="ok")
    >>> mine = Ledger(CallBudget(calls=5))
    >>> accounted(AccountingRunner(scripted), mine).inner is scripted
    True
    >>> accounted(AccountingRunner(scripted, CallBudget(calls=9)), mine).inner.budget
    CallBudget(calls=9, tokens=None, usd=None)
    """
    return AccountingRunner(
        below_accounting(runner), ledger=ledger, default_max_tokens=default_max_tokens
    )


def below_accounting(runner: Runner) -> Runner:
    """What a caller with its own ledger counts: the layers below ``runner``'s accounting
    layer when it has no budget of its own (a CLI's stack), else ``runner`` itself (see
    :func:`accounted`)."""
    if isinstance(runner, AccountingRunner) and runner.budget is None:
        return runner.inner
    return runner


class CompletionCap(WrapperRunner):
    """Sends requests that carry no ``max_tokens`` with ``max_tokens``; others as they are.

    >>> import asyncio
    >>> from sammo_core.runners import ScriptedRunner
    >>> inner = ScriptedRunner(default="ok")
    >>> _ = asyncio.run(CompletionCap(inner, 16).generate(LLMRequest.from_prompt("Hi")))
    >>> inner.requests[0].max_tokens
    16
    """

    def __init__(self, inner: Runner, max_tokens: int) -> None:
        if max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1; got {max_tokens}")
        super().__init__(inner)
        self.max_tokens = max_tokens

    def __repr__(self) -> str:
        return f"CompletionCap({self.inner!r}, max_tokens={self.max_tokens})"

    async def generate(self, request: LLMRequest) -> LLMResult:
        if request.max_tokens is None:
            request = dataclasses.replace(request, max_tokens=self.max_tokens)
        return await self.inner.generate(request)

    def planned_calls(self, request: LLMRequest) -> tuple[LLMRequest, ...]:
        if request.max_tokens is None:
            request = dataclasses.replace(request, max_tokens=self.max_tokens)
        return self.inner.planned_calls(request)


def _fmt(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.6f}".rstrip("0")
