"""The search loop every strategy shares: propose, evaluate, select, checkpoint, repeat.

A strategy implements two hooks: :meth:`Search.initial_population` and :meth:`Search.step`;
everything else (budgets, duplicate skipping, the trace, per-operator win rates, checkpoints
and resume, progress, the final test report) lives here. Each step draws its randomness from
``random.Random(f"{seed}/{step}")``, so a run resumed from the checkpoint of step k makes the
same choices as one that never stopped.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import orjson
import pyglove as pg

from mutators.base import PROPOSAL_MAX_TOKENS, Mutation, MutationContext, Mutator, ScoredProgram
from renderers.errors import RenderError
from sammo_core.components import Output
from sammo_core.data import DataTable
from sammo_core.errors import BudgetExceededError, ConfigError, DataError, SammoError
from sammo_core.graph import FunctionGraph, content_hash
from sammo_core.graph import compile as compile_graph
from sammo_core.objectives import Objective, Score, get_objective, reply_counts
from sammo_core.results import ProgramCost, ResultRow, ResultTable
from sammo_core.run_files import check_not_linked, read_json, write_file
from sammo_core.runners.accounting import (
    AccountingRunner,
    Ledger,
    Usage,
    UsageJournal,
    accounted,
)
from sammo_core.runners.base import LLMRequest, LLMResult, Runner, WrapperRunner
from sammo_core.serialization import from_json, legacy_json, to_json
from search.budget import SearchBudget
from search.candidate import Candidate, fitness
from search.charging import Tab, TabLedger, charging
from search.evaluator import Evaluation, Evaluator
from search.panel import Panel, counted_panel
from search.pareto import pareto_front
from search.racing import Race, RaceEntry, Racing, in_race_order
from search.reporting import TestReport, kept_report, reported, save_result
from search.result import SearchResult

__all__ = ["Batch", "Progress", "Search", "SearchRun", "default_max_tokens", "gather_all"]

CHECKPOINT = "checkpoint.json"
CHECKPOINT_VERSION = 1
#: The append-only record of every call a run made (see UsageJournal), beside the checkpoint.
JOURNAL = "usage.jsonl"
#: The cap per input of task calls when no gold output tells how long answers are.
UNKNOWN_OUTPUT_MAX_TOKENS = 256
#: How long a step pauses after starting a parent's children before the next parent proposes
#: (see SearchRun.expand): time for their first calls to go out. Not a result, only a timing.
_LAUNCH_S = 0.001


class _Waiting(WrapperRunner):
    """``inner``, calling ``on_wait`` before each request it waits for (see
    :meth:`SearchRun.expand`: a proposal that waits for a model lets the next one start)."""

    def __init__(self, inner: Runner, on_wait: Callable[[], None]) -> None:
        super().__init__(inner)
        self.on_wait = on_wait

    async def generate(self, request: LLMRequest) -> LLMResult:
        self.on_wait()
        return await self.inner.generate(request)


@dataclasses.dataclass(frozen=True)
class Progress:
    """What a progress display shows after each evaluated candidate."""

    step: int
    max_steps: int | None
    candidates: int
    best: float
    objective: str
    usage: Usage
    budget: SearchBudget


ProgressCallback = Callable[[Progress], None]
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Batch:
    """Children proposed together for one parent (``None``: the start), and what proposing
    them spent (the proposer calls, and task calls an operator made, e.g. a text gradient)."""

    parent: Candidate | None
    mutations: Sequence[Mutation]
    spent: Usage = dataclasses.field(default_factory=Usage)


async def gather_all(awaitables: Sequence[Awaitable[T]]) -> list[T]:
    """Await all at once, each in its own task; results in order.

    The first exception cancels the others (no call is left running after a failure) and is
    raised as it is.

    >>> async def double(x: int) -> int:
    ...     await asyncio.sleep(0.01 * (3 - x))
    ...     return 2 * x
    >>> asyncio.run(gather_all([double(1), double(2), double(3)]))
    [2, 4, 6]
    """

    async def wrap(awaitable: Awaitable[T]) -> T:
        return await awaitable

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(wrap(a)) for a in awaitables]
    except BaseExceptionGroup as failure:
        raise failure.exceptions[0] from None
    return [t.result() for t in tasks]


@dataclasses.dataclass
class Ahead:
    """A step started while the one before it is still scored (see
    :meth:`SearchRun.start_step`): its task, which records its children once ``release`` is
    set, and its batches once they are all proposed (``planned``)."""

    step: int
    task: asyncio.Task[list[Candidate]]
    planned: asyncio.Event
    release: asyncio.Event
    batches: list[Batch]

    async def wait_planned(self) -> None:
        """Return once the batches are known, or raise what stopped the step before that."""
        planned = asyncio.ensure_future(self.planned.wait())
        try:
            await asyncio.wait({planned, self.task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            planned.cancel()
        if not self.planned.is_set():
            self.task.result()  # raises what the step raised
            raise AssertionError("a step ended without its batches")  # pragma: no cover

    async def cancel(self) -> None:
        """Stop the step (its calls in flight are cancelled; what they spent stays counted)."""
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task


@dataclasses.dataclass
class _Planned:
    """A child whose evaluation has started: its batch, the tab charged with its calls, its
    requests digest (``None``: not known before calling), and where its outcome comes from:
    its own evaluation's task, or, when it sends the requests of an earlier child (``same``),
    that candidate's id or that child's task."""

    index: int
    mutation: Mutation
    tab: Tab
    requests: str | None
    source: int | asyncio.Task[Evaluation | BudgetExceededError] = -1
    same: bool = True


class SearchRun:
    """The mutable state of one search run, and the tools a strategy's step uses."""

    def __init__(
        self,
        search: Search,
        *,
        train: DataTable | None,
        evaluator: Evaluator,
        proposer: Runner,
        ledger: Ledger,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.search = search
        self.train = train
        self.evaluator = evaluator
        self.proposer = proposer
        self.ledger = ledger
        self.on_progress = on_progress
        self.step = 0
        self.candidates: list[Candidate] = []
        self.by_hash: dict[str, int] = {}
        # Requests digest -> the first candidate that sent those requests (see _add_stream).
        self.by_requests: dict[str, int] = {}
        self.population: list[int] = []
        self.results: dict[int, ResultTable] = {}
        # Per candidate: rows failed / empty / unparsable / off-label (see reply_counts), and
        # "cut_off", when some replies were cut off at max_tokens.
        self.replies: dict[int, dict[str, int | None]] = {}
        self.stopped: str | None = None
        # Proposer calls that no candidate was charged with yet (they go to the next one).
        self._unpaid = Usage()
        # Each program's JSON by content hash, made once: every checkpoint writes them all.
        # A child's is made when its evaluation ends (see _add_stream), while the calls of
        # the others are in flight, rather than in the checkpoint between two steps.
        self._program_json: dict[str, Any] = {}
        self._records: dict[int, list[dict[str, Any]]] = {}
        # Children planned and not yet recorded (a pipelined strategy's next step proposes
        # while they are scored), and the task sending each requests digest meanwhile.
        self._in_flight: set[str] = set()
        self._sending: dict[str, asyncio.Task[Evaluation | BudgetExceededError]] = {}
        # A pipelined strategy's step started ahead (see start_step), and one restored from a
        # checkpoint: its number and batches, to be scored again as they were proposed.
        self.ahead: Ahead | None = None
        self.stored_ahead: tuple[int, list[Batch]] | None = None
        # Each candidate's per-row primary scores in race order (see race), made once.
        self._race_entries: list[RaceEntry] = []

    # -- reading ---------------------------------------------------------------------------

    @property
    def objectives(self) -> list[Objective]:
        return self.search.objectives

    def get(self, candidate_id: int) -> Candidate:
        return self.candidates[candidate_id]

    def members(self) -> list[Candidate]:
        return [self.candidates[i] for i in self.population]

    def best(self) -> Candidate:
        """The best candidate scored on the whole split (racing never picks another)."""
        return max(self.contenders(), key=lambda c: fitness(c, self.objectives))

    def contenders(self) -> list[Candidate]:
        """The candidates scored on the whole split: all, unless racing stopped some early."""
        return [c for c in self.candidates if not c.eliminated]

    def rng(self, step: int | None = None) -> random.Random:
        """The random source of this step (or of ``step``): the same for the same seed and
        step, resumed or not."""
        return random.Random(f"{self.search.seed}/{self.step if step is None else step}")

    def ranked(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """Best first: by Pareto rank when there are several objectives, then by fitness.
        Candidates that racing stopped early are left out."""
        candidates = [c for c in candidates if not c.eliminated]
        if len(self.objectives) == 1:
            return sorted(candidates, key=lambda c: fitness(c, self.objectives), reverse=True)
        remaining, out = list(candidates), []
        while remaining:
            front = pareto_front(remaining, self.objectives)
            ids = {c.id for c in front}
            out.extend(front)
            # pareto_front keeps one of several equal-score candidates; the rest rank after it
            remaining = [c for c in remaining if c.id not in ids]
        return out

    # -- acting ----------------------------------------------------------------------------

    def budget_left(self) -> bool:
        limit = self.search.budget.candidates
        return limit is None or len(self.candidates) < limit

    async def propose(
        self,
        parent: Candidate,
        n: int,
        rng: random.Random,
        on_wait: Callable[[], None] | None = None,
    ) -> list[Mutation]:
        """Ask the mutator for up to ``n`` children of ``parent``.

        The proposer calls are charged to the :class:`~search.charging.Tab` open in the calling
        task (see :meth:`expand`, which opens one per parent). ``on_wait`` is called each time
        the proposal sends a request to a model (the proposer's or the task's), just before it
        waits for the answer.
        """
        if not self.search.mutator.applicable(parent.program):
            return []
        history = tuple(
            ScoredProgram(c.program, c.score(self.objectives[0].name))
            for c in sorted(self.candidates, key=lambda c: fitness(c, self.objectives))
        )
        proposer, task = self.proposer, self.evaluator.runner
        if on_wait is not None:
            proposer, task = _Waiting(proposer, on_wait), _Waiting(task, on_wait)
        context = MutationContext(
            runner=proposer,
            train=self.train,
            task=task,
            history=history,
            exclude=frozenset(self.by_hash).union(self._in_flight),
        )
        # Operators skip programs evaluated before (context.exclude); LLM proposals cannot
        # know theirs in advance, so a repeat is dropped here rather than evaluated again.
        offered = await self.search.mutator.mutate(parent.program, rng, n=n, context=context)
        offered = [_own_prior(m) for m in offered]
        return [m for m in offered if content_hash(m.program) not in context.exclude]

    async def expand(
        self,
        requests: Sequence[tuple[Candidate, int]],
        rng: random.Random,
        *,
        on_planned: Callable[[Sequence[Batch]], None] | None = None,
        before_take: Callable[[], Awaitable[object]] | None = None,
    ) -> list[Candidate]:
        """Propose up to ``n`` children of each ``(parent, n)`` and evaluate the new ones.

        Each parent's proposal gets its own random source drawn from ``rng`` in order, and
        children are taken in the order of ``requests`` (see :meth:`add_all`), so the outcome
        does not depend on which call answers first. Proposing and evaluating overlap: the
        children of a parent are evaluated as soon as its proposal and those before it are
        done, while the later parents are still proposing. A proposal that waits for a model
        lets the next one start at once; one that computes without waiting (the structural
        operators) lets the next start once its children have sent their first calls, so
        the first children of a step are scored after one proposal's CPU, not after all of
        them taking turns.
        A budget that runs out while proposing stops the search after the children proposed
        so far are evaluated.
        """
        seeds = [rng.getrandbits(64) for _ in requests]
        loop = asyncio.get_running_loop()
        turns: list[asyncio.Future[None]] = [loop.create_future() for _ in requests]

        def open_turn(index: int) -> None:
            if index < len(turns) and not turns[index].done():
                turns[index].set_result(None)

        async def proposed(index: int) -> Batch | BudgetExceededError:
            await turns[index]
            parent, n = requests[index]
            with charging(Tab()) as tab:
                try:
                    # Waiting for a model, the next parent proposes meanwhile.
                    mutations = await self.propose(
                        parent, n, random.Random(seeds[index]), lambda: open_turn(index + 1)
                    )
                except BudgetExceededError as exc:
                    return exc
            return Batch(parent, mutations, tab.usage)

        async def launched(index: int) -> None:
            if index + 1 >= len(turns) or turns[index + 1].done():
                return  # no proposal waits for this one
            # Let the children just planned send their first calls before the next proposal,
            # which may hold the event loop for a while, starts.
            await asyncio.sleep(_LAUNCH_S)
            open_turn(index + 1)

        if turns:
            open_turn(0)
        return await self._add_stream(
            lambda group: [group.create_task(proposed(i)) for i in range(len(requests))],
            launched,
            on_planned=on_planned,
            before_take=before_take,
        )

    def start_step(self, step: int, requests: Sequence[tuple[Candidate, int]]) -> Ahead:
        """Start step ``step`` in a task: propose up to ``n`` children of each ``(parent, n)``
        (as :meth:`expand`, with the step's own random source) and score them; they are
        recorded once the returned :class:`Ahead`'s ``release`` is set.

        A pipelined strategy proposes its next step from the candidates recorded so far
        while this one is still scored, and releases this one once the next is planned, so
        what each proposal sees does not depend on which call answers first. The children of
        a step restored from a checkpoint (:attr:`stored_ahead`) are scored again as they
        were proposed, with no new proposal.
        """
        planned, release = asyncio.Event(), asyncio.Event()
        proposed: list[Batch] = []

        def on_planned(batches: Sequence[Batch]) -> None:
            proposed[:] = batches
            planned.set()

        stored, self.stored_ahead = self.stored_ahead, None
        if stored is not None and stored[0] == step:
            work = self.add_all(stored[1], on_planned=on_planned, before_take=release.wait)
        else:
            work = self.expand(
                requests, self.rng(step), on_planned=on_planned, before_take=release.wait
            )
        task = asyncio.get_running_loop().create_task(work)
        return Ahead(step, task, planned, release, proposed)

    async def drop_ahead(self) -> None:
        """Cancel the step started ahead, if any (the run ends: a budget or an error)."""
        ahead, self.ahead = self.ahead, None
        if ahead is not None:
            await ahead.cancel()

    def room(self) -> int | None:
        """How many more candidates the candidates budget allows, the children planned and not
        yet recorded (a step started ahead) counted as spent; ``None``: no such limit."""
        limit = self.search.budget.candidates
        return (
            None if limit is None else max(0, limit - len(self.candidates) - len(self._in_flight))
        )

    def race(self) -> Race | None:
        """The racing rule for candidates added now (``None``: racing is off, or this is the
        start program, which is always scored in full)."""
        racing = self.search.racing
        if not racing.on or not self.candidates:
            return None
        n = len(self.evaluator.data)
        order = racing.order(n, self.search.seed)
        primary = self.objectives[0]
        for c in self.candidates[len(self._race_entries) :]:  # each candidate once per run
            per_item = c.scores[primary.name].per_item
            if per_item is None:
                raise ConfigError(
                    f"racing needs a primary objective scored row by row (accuracy, "
                    f"label_accuracy, label_loglik, f1, ...); {primary.name} is a total. "
                    "Put a per-row objective first (--objective), or --racing off"
                )
            rows = n if c.rows is None else c.rows
            self._race_entries.append(RaceEntry(tuple(in_race_order(per_item, order, rows)), rows))
        field = list(self._race_entries)
        incumbent = field[self.best().id]
        return Race(racing, order, racing.sizes(n), primary, field, incumbent)

    async def add(self, mutation: Mutation, parent: Candidate | None) -> Candidate | None:
        """Evaluate a child unless an equal program was seen; ``None`` if skipped, or if
        racing stopped it before the whole split (it is in the trace all the same)."""
        added = await self.add_all([Batch(parent, [mutation])])
        return added[0] if added else None

    async def add_all(
        self,
        batches: Sequence[Batch],
        *,
        on_planned: Callable[[Sequence[Batch]], None] | None = None,
        before_take: Callable[[], Awaitable[object]] | None = None,
    ) -> list[Candidate]:
        """Evaluate the new children of ``batches`` at once; return them as candidates, in order.

        A child equal to a program seen before (or to an earlier child) is skipped, and so are
        those past the candidates budget, counted in order. The evaluations share the
        evaluator's concurrency limit and the run's budget; their results are taken in the
        order of ``batches`` and their mutations, so ids, the trace and learned operator
        weights do not depend on which call answers first. Each candidate is charged what its
        own evaluation spent, plus the proposer calls of its batch if it is the first of its
        batch to be added (proposals that added no candidate are charged to the next one).
        When the budget refuses a call, the children evaluated in full are still added, then
        :class:`~sammo_core.errors.BudgetExceededError` is raised. ``on_planned`` and
        ``before_take`` are as in :meth:`_add_stream`.
        """

        async def ready(batch: Batch) -> Batch:
            return batch

        return await self._add_stream(
            lambda _: [ready(b) for b in batches], on_planned=on_planned, before_take=before_take
        )

    async def _add_stream(
        self,
        start: Callable[[asyncio.TaskGroup], Sequence[Awaitable[Batch | BudgetExceededError]]],
        launched: Callable[[int], Awaitable[None]] | None = None,
        *,
        on_planned: Callable[[Sequence[Batch]], None] | None = None,
        before_take: Callable[[], Awaitable[object]] | None = None,
    ) -> list[Candidate]:
        """:meth:`add_all` over batches still being proposed: ``start(group)`` gives one
        awaitable per batch (tasks of ``group``, or plain coroutines), in order; each batch's
        children start their evaluation as soon as it and the batches before it are known,
        and ``launched(i)`` is awaited after batch ``i``'s have been started. A proposal
        refused by the budget (a :class:`~sammo_core.errors.BudgetExceededError` in place of
        its batch) adds nothing, and the error is raised after the other children are added.

        ``on_planned(batches)`` is called once every batch is known and its children started;
        ``before_take()`` is awaited after they are scored and before they are recorded. A
        pipelined strategy (see :class:`~search.beam.BeamSearch`) runs two such calls at
        once: children still in flight in the other count against the candidates budget and
        are never proposed or scored twice.
        """
        room = self.room()
        batches: list[Batch] = []
        refusals: list[BudgetExceededError] = []
        planned: list[_Planned] = []
        taken: set[str] = set()
        mine: list[str] = []  # the requests digests this call's children send first
        # Racing decisions see the candidates recorded before these children, never each
        # other: the outcome does not depend on which call answers first.
        race = self.race()

        try:
            async with asyncio.TaskGroup() as group:
                for i, pending in enumerate(start(group)):
                    proposal = await pending
                    if isinstance(proposal, BudgetExceededError):
                        refusals.append(proposal)
                    else:
                        index = len(batches)
                        batches.append(proposal)
                        for mutation in proposal.mutations:
                            digest = content_hash(mutation.program)
                            if (
                                digest in self.by_hash
                                or digest in taken
                                or digest in self._in_flight
                            ):
                                continue
                            if room is not None and len(planned) >= room:
                                break
                            taken.add(digest)
                            child = await self._plan(index, mutation, group, race, mine)
                            planned.append(child)
                    if launched is not None:
                        await launched(i)
                self._in_flight |= taken
                if on_planned is not None:
                    on_planned(batches)
            if before_take is not None:
                await before_take()
        except BaseExceptionGroup as failure:
            raise failure.exceptions[0] from None
        finally:
            self._in_flight -= taken
            for requests in mine:
                self._sending.pop(requests, None)
        added = self._take(batches, planned)
        if refusals:  # a proposal refused by the budget, once the others' children are in
            raise refusals[0]
        return added

    async def _plan(
        self,
        index: int,
        mutation: Mutation,
        group: asyncio.TaskGroup,
        race: Race | None,
        mine: list[str],
    ) -> _Planned:
        """Start scoring a child of batch ``index`` in ``group``, unless it sends the requests
        of a recorded candidate or of a child in flight, whose outcome it will take."""
        graph = compile_graph(mutation.program)
        requests = await self.evaluator.digest(graph)
        child = _Planned(index, mutation, Tab(), requests)
        if requests is not None and requests in self.by_requests:
            child.source = self.by_requests[requests]
        elif requests is not None and requests in self._sending:
            child.source = self._sending[requests]
        else:
            child.source = group.create_task(self._evaluated(mutation, graph, child.tab, race))
            child.same = False
            if requests is not None:
                self._sending[requests] = child.source
                mine.append(requests)
        return child

    async def _evaluated(
        self, mutation: Mutation, graph: FunctionGraph, tab: Tab, race: Race | None
    ) -> Evaluation | BudgetExceededError:
        with charging(tab):
            try:
                evaluation = await self.evaluator.evaluate(mutation.program, graph, race=race)
            except BudgetExceededError as exc:
                return exc
        self._program_json_of(evaluation.hash, mutation.program)  # for the checkpoint
        return evaluation

    def _take(self, batches: Sequence[Batch], planned: Sequence[_Planned]) -> list[Candidate]:
        """Record the evaluated children in order, charging proposals as :meth:`add_all`
        says; raise the first refusal. A child that sends the requests of an earlier one is
        recorded with its scores and no call."""
        added: list[Candidate] = []
        refused: BudgetExceededError | None = None
        charged = -1
        for p in planned:
            while charged < p.index:  # proposals of the batches up to this child's
                charged += 1
                self._unpaid = self._unpaid + batches[charged].spent
            outcome = self.candidates[p.source] if isinstance(p.source, int) else p.source.result()
            if isinstance(outcome, BudgetExceededError):
                refused = refused or outcome
                continue
            spent, self._unpaid = self._unpaid + p.tab.usage, Usage()
            parent = batches[p.index].parent
            if isinstance(outcome, Candidate):
                child = self._record_same(p.mutation, parent, outcome, spent)
            elif p.same:
                earlier = self.candidates[self.by_hash[outcome.hash]]
                child = self._record_same(p.mutation, parent, earlier, spent)
            else:
                child = self._record(p.mutation, parent, outcome, spent)
            if p.requests is not None:
                self.by_requests.setdefault(p.requests, child.id)
            if not child.eliminated:  # one stopped by racing is in the trace, nowhere else
                added.append(child)
        for batch in batches[charged + 1 :]:
            self._unpaid = self._unpaid + batch.spent
        if refused is not None:
            raise refused
        return added

    def _record(
        self, mutation: Mutation, parent: Candidate | None, evaluation: Evaluation, spent: Usage
    ) -> Candidate:
        """Add an evaluated child to the run: the trace, operator learning, progress."""
        rows, rung = evaluation.rows, evaluation.rung
        racing = self.search.racing
        if rows is None and racing.on:  # the start: scored in full, at the last rung
            rows = len(self.evaluator.data)
            rung = len(racing.sizes(rows)) - 1
        candidate = Candidate(
            id=len(self.candidates),
            program=mutation.program,
            hash=evaluation.hash,
            scores=evaluation.scores,
            parent=None if parent is None else parent.id,
            operator=mutation.operator,
            description=mutation.description,
            step=self.step,
            cost=evaluation.results.cost_per_input(),
            spent_calls=spent.calls,
            spent_tokens=spent.total_tokens,
            spent_usd=spent.usd,
            label_prior=evaluation.results.label_prior,
            rows=rows,
            rung=rung,
            eliminated=evaluation.eliminated,
        )
        self.results[candidate.id] = evaluation.results
        replies = reply_counts(evaluation.results, self.objectives)
        if evaluation.results.cut_off:  # replies the model cut off at max_tokens
            replies["cut_off"] = evaluation.results.cut_off
        return self._admit(candidate, mutation, parent, replies)

    def _record_same(
        self, mutation: Mutation, parent: Candidate | None, earlier: Candidate, spent: Usage
    ) -> Candidate:
        """Add a child that sends exactly the requests of ``earlier`` (say, a section format
        that renders the same text): its scores, cost and race, no call of its own."""
        candidate = dataclasses.replace(
            earlier,
            id=len(self.candidates),
            program=mutation.program,
            hash=content_hash(mutation.program),
            parent=None if parent is None else parent.id,
            operator=mutation.operator,
            description=mutation.description,
            step=self.step,
            spent_calls=spent.calls,
            spent_tokens=spent.total_tokens,
            spent_usd=spent.usd,
            same_as=earlier.same_as if earlier.same_as is not None else earlier.id,
        )
        if earlier.id in self.results:
            self.results[candidate.id] = self.results[earlier.id]
        return self._admit(candidate, mutation, parent, self.replies.get(earlier.id) or {})

    def _admit(
        self,
        candidate: Candidate,
        mutation: Mutation,
        parent: Candidate | None,
        replies: dict[str, int | None],
    ) -> Candidate:
        self.candidates.append(candidate)
        self.by_hash[candidate.hash] = candidate.id
        self.replies[candidate.id] = replies
        mutator = self.search._mutator
        if parent is not None and mutator is not None:
            primary = self.objectives[0].name
            better = not candidate.eliminated and (
                fitness(candidate, self.objectives[:1]) > fitness(parent, self.objectives[:1])
            )
            mutator.record(
                mutation.operator, better and candidate.score(primary) != parent.score(primary)
            )
        if self.on_progress is not None:
            self.on_progress(
                Progress(
                    self.step,
                    self.search.max_steps(),
                    len(self.candidates),
                    self.best().score(self.objectives[0].name),
                    self.objectives[0].name,
                    self.ledger.usage,
                    self.search.budget,
                )
            )
        return candidate

    # -- checkpoints -----------------------------------------------------------------------

    def state_dict(self, fingerprint: str) -> dict[str, Any]:
        mutator = self.search._mutator
        keep = set(self.population) | {self.best().id}
        return {
            "version": CHECKPOINT_VERSION,
            "fingerprint": fingerprint,
            "step": self.step,
            "stopped": self.stopped,
            "population": self.population,
            "candidates": [
                {
                    **c.summary(),
                    "replies": self.replies.get(c.id),
                    "scores": {k: s.to_dict() for k, s in c.scores.items()},
                    "program": self._json_of(c),
                }
                for c in self.candidates
            ],
            "results": {str(i): self._records_of(i) for i in sorted(keep) if i in self.results},
            "mutator": None if mutator is None else mutator.state_dict(),
            "usage": self.ledger.usage.to_dict(),
            **({} if self.ahead is None else {"ahead": self._ahead_state(self.ahead)}),
        }

    def _ahead_state(self, ahead: Ahead) -> dict[str, Any]:
        """The step started ahead, as proposed: its children are scored again on resume."""
        return {
            "step": ahead.step,
            "batches": [
                {
                    "parent": None if b.parent is None else b.parent.id,
                    "spent": b.spent.to_dict(),
                    "mutations": [
                        {
                            "program": self._program_json_of(content_hash(m.program), m.program),
                            "description": m.description,
                            "operator": m.operator,
                        }
                        for m in b.mutations
                    ],
                }
                for b in ahead.batches
            ],
        }

    async def index_requests(self) -> None:
        """Rebuild :attr:`by_requests` of loaded candidates (they are not in the checkpoint:
        rendering each program's requests again costs no call)."""
        self.by_requests = {}
        for c in self.candidates:
            digest = await self.evaluator.digest(compile_graph(c.program))
            if digest is not None:
                self.by_requests.setdefault(digest, c.id)

    def _records_of(self, candidate_id: int) -> list[dict[str, Any]]:
        """A candidate's result rows as the checkpoint keeps them, made once (a result table
        never changes once recorded; the beam's members are written at every step)."""
        records = self._records.get(candidate_id)
        if records is None:
            records = self._records[candidate_id] = self.results[candidate_id].to_records()
        return records

    def _json_of(self, candidate: Candidate) -> Any:
        return self._program_json_of(candidate.hash, candidate.program)

    def _program_json_of(self, digest: str, program: Output) -> Any:
        data = self._program_json.get(digest)
        if data is None:
            data = self._program_json[digest] = to_json(program)
        return data

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._program_json = {}
        self._records = {}
        self._race_entries = []
        self.step = state["step"]
        self.stopped = state["stopped"]
        self.population = list(state["population"])
        self.candidates = [_candidate_from(c) for c in state["candidates"]]
        self.by_hash = {c.hash: c.id for c in self.candidates}
        self.replies = {c["id"]: c["replies"] for c in state["candidates"] if c.get("replies")}
        self.results = {
            int(i): ResultTable.from_rows([ResultRow(**r) for r in rows])
            for i, rows in state["results"].items()
        }
        mutator = self.search._mutator
        if state["mutator"] is not None and mutator is not None:
            mutator.load_state_dict(state["mutator"])
        ahead = state.get("ahead")
        self.stored_ahead = None
        if ahead is not None:
            batches = [
                Batch(
                    None if b["parent"] is None else self.candidates[b["parent"]],
                    [
                        Mutation(
                            cast(Output, from_json(m["program"])), m["description"], m["operator"]
                        )
                        for m in b["mutations"]
                    ],
                    Usage(**b["spent"]),
                )
                for b in ahead["batches"]
            ]
            self.stored_ahead = (int(ahead["step"]), batches)


def _score_from(d: dict[str, Any]) -> Score:
    per_item = d.get("per_item")
    return Score(
        d["name"],
        d["value"],
        d["ci_low"],
        d["ci_high"],
        None if per_item is None else tuple(per_item),
        d["n"],
    )


def _own_prior(mutation: Mutation) -> Mutation:
    """``mutation`` with no calibration prior given: a prior fitted for the parent (say, baked
    into an exported program) is not the child's, which fits its own when it runs."""
    program = mutation.program
    if not list(program.label_prior):
        return mutation
    child = pg.clone(program, deep=True, override={"label_prior": []})
    return dataclasses.replace(mutation, program=child)


def _candidate_from(d: dict[str, Any]) -> Candidate:
    program = from_json(d["program"])
    assert isinstance(program, Output)
    return Candidate(
        id=d["id"],
        program=program,
        hash=d["hash"],
        scores={k: _score_from(v) for k, v in d["scores"].items()},
        parent=d["parent"],
        operator=d["operator"],
        description=d["description"],
        step=d["step"],
        cost=ProgramCost.from_dict(d.get("cost_per_input", {})),
        spent_calls=d["spent"]["calls"] if "spent" in d else d["calls"],
        spent_tokens=d["spent"]["tokens"] if "spent" in d else d["tokens"],
        spent_usd=d["spent"]["usd"] if "spent" in d else 0.0,
        label_prior=d.get("label_prior"),
        rows=d["race"]["rows"] if "race" in d else None,
        rung=d["race"]["rung"] if "race" in d else None,
        eliminated=d["race"]["eliminated"] if "race" in d else False,
        same_as=d.get("same_as"),
    )


def default_max_tokens(*tables: DataTable | None) -> int:
    """The completion cap per input of task calls: room for the longest gold output.

    A token never covers less than one UTF-8 byte, so the longest output's length in bytes
    always fits; 16 more tokens leave room for what a data format wraps around an answer (an
    id, a key, quotes). Without any gold output it is ``UNKNOWN_OUTPUT_MAX_TOKENS``.

    >>> default_max_tokens(DataTable(["q1", "q2"], ["yes", "no"]))
    19
    >>> default_max_tokens(DataTable(["q"], [{"label": "positive"}]))
    36
    """
    longest = -1
    for table in tables:
        for output in () if table is None else table.outputs:
            if output is not None:
                text = output if isinstance(output, str) else orjson.dumps(output).decode()
                longest = max(longest, len(text.encode("utf-8")))
    return UNKNOWN_OUTPUT_MAX_TOKENS if longest < 0 else longest + 16


def _start_needs(program: Output, val: DataTable, used: Usage, exc: BudgetExceededError) -> str:
    """Why a budget could not even score the start program, and what that takes."""
    per_call = program.inputs_per_call
    calls = -(-len(val) // per_call)
    reason = str(exc).split(";")[0]
    return (
        f"the budget ran out while scoring the start program ({reason}): scoring it takes "
        f"{calls:,} calls, one per {per_call} of the {len(val):,} validation rows, and "
        f"{used.calls:,} calls ({used.total_tokens:,} tokens) were spent. Raise the budget "
        "(--budget calls=..., tokens=... or usd=...) above what the start program needs, or "
        "score on fewer validation rows (--split)"
    )


def _open_run_dir(
    out: Path | None, resume: bool, fingerprint: str
) -> tuple[dict[str, Any] | None, UsageJournal | None]:
    """The checkpoint to resume from (if any) and the run's usage journal (with an out_dir).

    A fresh run starts a new journal; a resumed one goes on with the old, so every call made
    before, checkpointed or not, stays charged. (A run that died before its first checkpoint
    starts over, still charged for what it spent.)
    """
    if out is None:
        return None, None
    state: dict[str, Any] | None = None
    if resume and (out / CHECKPOINT).is_file():
        state = read_json(out / CHECKPOINT, what="search checkpoint")
        if not isinstance(state, dict) or not isinstance(state.get("fingerprint"), str):
            raise DataError(
                f"{out / CHECKPOINT} is not a search checkpoint (no fingerprint in a JSON "
                "object): restore it, or delete it to start the search over (calls already "
                "spent stay counted)"
            )
        if state["fingerprint"] != fingerprint:
            raise ConfigError(
                f"the checkpoint in {out} belongs to a different search (other program, "
                "data, strategy, budget or seed); use a new output directory"
            )
    out.mkdir(parents=True, exist_ok=True)
    check_not_linked(out, JOURNAL)
    if not resume:
        (out / JOURNAL).unlink(missing_ok=True)
    carried = state is not None and not (out / JOURNAL).is_file()
    journal = UsageJournal(out / JOURNAL, tag=fingerprint)
    if carried and state is not None:  # a checkpoint written before journals existed
        journal.carry(Usage(**state["usage"]))
    return state, journal


def _load_checkpoint(run: SearchRun, state: dict[str, Any], out: Path | None) -> None:
    """Restore ``run`` from a checkpoint read from ``out``; a damaged one fails in one line."""
    try:
        run.load_state_dict(state)
        _check_loaded(run)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, SammoError):
            raise
        raise DataError(
            f"{out if out is None else out / CHECKPOINT} is damaged ({type(exc).__name__}: "
            f"{str(exc)[:200]}): restore it, or delete it to start the search over (calls "
            "already spent stay counted)"
        ) from exc


async def _restore(run: SearchRun, state: dict[str, Any], out: Path | None) -> None:
    """Restore ``run`` from a checkpoint and index its requests; a damaged one: DataError."""
    _load_checkpoint(run, state, out)
    try:
        await run.index_requests()
    except RenderError as exc:  # a program edited into one that cannot render
        raise DataError(
            f"{out if out is None else out / CHECKPOINT} holds a program that cannot be "
            f"rendered ({exc}): restore it, or delete it to start the search over"
        ) from exc


def _is_count(value: Any, below: float = 2**63) -> bool:
    return type(value) is int and 0 <= value < below


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _check_loaded(run: SearchRun) -> None:
    """What a search relies on in a restored run (ValueError naming what is not so): ids in
    order, parents and the population among the candidates, counts and numbers in range."""
    n = len(run.candidates)
    if not _is_count(run.step) or not isinstance(run.stopped, str | None):
        raise ValueError(f"step {run.step!r} or stopped {run.stopped!r} is out of place")
    for i, c in enumerate(run.candidates):
        links = [c.parent, c.same_as]
        if c.id != i or not all(link is None or _is_count(link, i) for link in links):
            raise ValueError(f"candidate {i} has id {c.id!r}, parent {c.parent!r}")
        texts = (c.hash, c.operator, c.description)
        counts = (c.step, c.spent_calls, c.spent_tokens, *(x for x in (c.rows, c.rung) if x))
        if not all(isinstance(t, str) for t in texts) or not all(map(_is_count, counts)):
            raise ValueError(f"candidate {i} has a field of the wrong type")
        if not _is_number(c.spent_usd) or type(c.eliminated) is not bool:
            raise ValueError(f"candidate {i} has spent_usd or eliminated of the wrong type")
        missing = [o.name for o in run.objectives if o.name not in c.scores]
        if missing:
            raise ValueError(f"candidate {i} has no score for {', '.join(missing)}")
        for score in c.scores.values():
            bounds = (score.value, *(x for x in (score.ci_low, score.ci_high) if x is not None))
            if not all(map(_is_number, bounds)):
                raise ValueError(f"candidate {i} has a score that is not a number")
    if not all(_is_count(i, n) for i in [*run.population, *run.results]):
        raise ValueError(f"population {run.population!r} names candidates that do not exist")


class Search(abc.ABC):
    """Base class of search strategies.

    Args:
        mutator: the operator (often a :class:`~mutators.mixture.Mixture`) proposing children.
        objectives: objective names or objects; the first is primary. With several, the
            result includes the Pareto front.
        budget: what the search may spend (candidates, calls, tokens, dollars).
        seed: the seed of every random choice the search and its operators make.
        max_concurrency: rows evaluated at once.
        max_tokens: the completion cap of task calls per input packed into the call, for
            calls whose ``GenerateText`` sets no ``max_tokens``. ``None``: sized to the longest
            gold output of the data (see :func:`default_max_tokens`).
        racing: whether candidates are first scored on a few validation rows and on more only
            while they can still win (see :mod:`search.racing`; default: off, every candidate
            is scored on the whole split).
    """

    #: What the step limit of :meth:`max_steps` is called, for the stop reason.
    step_limit_name: str = "steps"

    def __init__(
        self,
        mutator: Mutator | None,
        *,
        objectives: Sequence[Objective | str] = ("accuracy",),
        budget: SearchBudget,
        seed: int = 0,
        max_concurrency: int = 32,
        max_tokens: int | None = None,
        racing: Racing | None = None,
    ) -> None:
        if not objectives:
            raise ConfigError("a search needs at least one objective, e.g. 'accuracy'")
        if max_tokens is not None and max_tokens < 1:
            raise ConfigError(
                f"max_tokens must be >= 1 or None (sized to the data); got {max_tokens}"
            )
        self._mutator = mutator
        self.objectives = [get_objective(o) if isinstance(o, str) else o for o in objectives]
        self.budget = budget
        self.seed = seed
        self.max_concurrency = max_concurrency
        self.max_tokens = max_tokens
        self.racing = racing or Racing()
        primary = self.objectives[0]
        if self.racing.on and primary.per_row is False:
            raise ConfigError(
                f"racing needs a primary objective scored row by row (accuracy, "
                f"label_accuracy, label_loglik, f1, ...); {primary.name} is a total. "
                "Put a per-row objective first (--objective), or --racing off"
            )

    @property
    def has_mutator(self) -> bool:
        """Whether an operator proposes the children (not so for enumerating strategies)."""
        return self._mutator is not None

    @property
    def mutator(self) -> Mutator:
        """The operator proposing children (strategies that enumerate a space have none)."""
        if self._mutator is None:
            raise ConfigError(
                f"{type(self).__name__} has no mutator: pass one, e.g. Mixture([...])"
            )
        return self._mutator

    # -- hooks -------------------------------------------------------------------------------

    def max_steps(self) -> int | None:
        """The number of steps after which the search ends (None: until the budget ends)."""
        return None

    @abc.abstractmethod
    async def initial_population(self, run: SearchRun, start: Candidate) -> None:
        """Fill ``run.population`` (ids) after the start program was evaluated."""

    @abc.abstractmethod
    async def step(self, run: SearchRun) -> bool:
        """Do one step; return False when the strategy has nothing left to try."""

    def params(self) -> dict[str, Any]:
        """The strategy's settings, for the checkpoint fingerprint and the report."""
        return {}

    def settings(self) -> dict[str, Any]:
        """:meth:`params` with the racing settings (none when racing is off)."""
        return {**self.params(), **self.racing.params()}

    # -- the loop ----------------------------------------------------------------------------

    def fingerprint(self, program: Output, train: DataTable | None, val: DataTable) -> str:
        import hashlib

        parts = {
            "strategy": type(self).__name__,
            "params": self.settings(),
            "mutator": repr(self._mutator),
            "objectives": [o.name for o in self.objectives],
            "budget": dataclasses.asdict(self.budget),
            "seed": self.seed,
            # With the type names of before the stable names, so earlier runs still resume.
            "program": orjson.dumps(legacy_json(program)).decode(),
            "train": None if train is None else train.content_hash(),
            "val": val.content_hash(),
        }
        if self.max_tokens is not None:
            parts["max_tokens"] = self.max_tokens
        return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]

    async def run(
        self,
        program: Output,
        *,
        val: DataTable,
        runner: Runner | Panel,
        train: DataTable | None = None,
        test: DataTable | None = None,
        proposer: Runner | None = None,
        out_dir: str | Path | None = None,
        resume: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> SearchResult:
        """Search from ``program``, selecting on ``val``; report ``test`` for the winners only.

        ``runner`` may be a :class:`~search.panel.Panel` of models: every candidate is scored
        on each, the search selects on their combined scores, proposals go to ``proposer``
        (default: the panel's first model), and the result's ``usage_by_model`` says what each
        model spent.

        With ``out_dir``, a checkpoint is written after every step and ``resume=True``
        continues from it. Runs that stop on the budget keep everything evaluated so far.
        """
        started = time.perf_counter()
        out = Path(out_dir) if out_dir is not None else None
        fingerprint = self.fingerprint(program, train, val)
        if resume and out is None:
            raise ConfigError("resume=True needs the out_dir of the run to continue")
        state, journal = _open_run_dir(out, resume, fingerprint)
        # Usage is durable per call in the journal, so calls made after the last checkpoint
        # are charged on resume too; without an out_dir there is nothing to resume.
        # A calls budget counts the calls the search makes, answered by a cache or not, so the
        # search does the same work on a warm cache as on a cold one.
        ledger = TabLedger(self.budget.runner_budget(), journal=journal, hits_are_calls=True)
        task, proposing, tallies = _counted(runner, proposer, ledger)
        per_input = self.max_tokens or default_max_tokens(val, train)
        evaluator = Evaluator(
            val, task, self.objectives, self.max_concurrency, max_tokens_per_input=per_input
        )
        run = SearchRun(
            self,
            train=train,
            evaluator=evaluator,
            proposer=proposing,
            ledger=ledger,
            on_progress=on_progress,
        )

        def checkpoint() -> None:
            _write_checkpoint(out, run, fingerprint)

        try:
            if state is not None:
                await _restore(run, state, out)
            else:
                start = await run.add(Mutation(program, "the starting program", "start"), None)
                if start is None:  # pragma: no cover - the first add always evaluates
                    raise ConfigError("the starting program could not be evaluated")
                await self.initial_population(run, start)
                checkpoint()
            limit = self.max_steps()
            while run.stopped is None:
                if limit is not None and run.step >= limit:
                    run.stopped = f"{self.step_limit_name} ({limit})"
                elif not run.budget_left():
                    run.stopped = "candidates budget"
                else:
                    run.step += 1
                    if not await self.step(run):
                        run.stopped = run.stopped or "search space exhausted"
                checkpoint()
        except BudgetExceededError as exc:
            if not run.candidates:
                raise BudgetExceededError(_start_needs(program, val, ledger.usage, exc)) from exc
            run.stopped = f"budget: {exc}".split(";")[0]
            checkpoint()
        finally:
            await run.drop_ahead()
            if journal is not None:
                journal.close()
        result = await _finish(
            run,
            test=test,
            runner=runner,
            started=started,
            earlier=None if state is None else state.get("test_report"),
        )
        if tallies:
            result = dataclasses.replace(
                result, usage_by_model={m: t.usage for m, t in tallies.items()}
            )
        _write_result(out, run, fingerprint, result, test)
        return result


def _write_checkpoint(out: Path | None, run: SearchRun, fingerprint: str) -> None:
    """Replace the checkpoint and the trace in ``out`` (nothing without one)."""
    if out is not None:
        write_file(out, CHECKPOINT, orjson.dumps(run.state_dict(fingerprint)))
        trace = b"".join(
            orjson.dumps({**c.summary(), "replies": run.replies.get(c.id)}) + b"\n"
            for c in run.candidates
        )
        write_file(out, "trace.jsonl", trace)


def _counted(
    runner: Runner | Panel, proposer: Runner | None, ledger: Ledger
) -> tuple[Runner | Panel, AccountingRunner, dict[str, AccountingRunner]]:
    """The task and proposer runners as given (a CLI's stack includes its accounting layer),
    counted on ``ledger``; for a panel of models, each model counted on the ledger (one budget)
    and on its own tally, and proposals going to its first model unless ``proposer``."""
    task: Runner | Panel
    tallies: dict[str, AccountingRunner] = {}
    if isinstance(runner, Panel):
        task, tallies = counted_panel(runner, ledger)
        proposer = proposer or runner.first
    else:
        task = accounted(runner, ledger)
    proposing = accounted(
        proposer or cast(Runner, runner), ledger, default_max_tokens=PROPOSAL_MAX_TOKENS
    )
    return task, proposing, tallies


async def _finish(
    run: SearchRun,
    *,
    test: DataTable | None,
    runner: Runner | Panel,
    started: float,
    earlier: Mapping[str, Any] | None,
) -> SearchResult:
    """The result of ``run``: its start, best and front, with their test report made now (or
    taken from ``earlier``, what :func:`~search.reporting.kept_report` kept)."""
    objectives = run.objectives
    start, best = run.candidates[0], run.best()
    contenders = run.contenders()  # racing may have stopped some before the whole split
    front = pareto_front(contenders, objectives) if len(objectives) > 1 else [best]
    report = await TestReport.make(
        reported([start, best, *front]),
        test=test,
        runner=runner,
        objectives=objectives,
        max_concurrency=run.search.max_concurrency,
        max_tokens_per_input=run.evaluator.max_tokens_per_input,
        earlier=earlier,
    )
    return SearchResult(
        objectives=objectives,
        candidates=run.candidates,
        start=start,
        best=best,
        front=front,
        test_scores=report.scores,
        usage=run.ledger.usage,
        test_usage=report.usage,
        stopped=run.stopped or "done",
        steps=run.step,
        seconds=time.perf_counter() - started,
        strategy=type(run.search).__name__,
        params=run.search.settings(),
        report_reused=report.reused,
    )


def _write_result(
    out: Path | None, run: SearchRun, fingerprint: str, result: SearchResult, test: DataTable | None
) -> None:
    """Write the result's files, and keep the test report in the checkpoint, so that a resume
    of this finished run reports it again with no call."""
    if out is None:
        return
    save_result(result, out)
    report = kept_report(result, test)
    if report is not None and not result.report_reused:
        state = {**run.state_dict(fingerprint), "test_report": report}
        write_file(out, CHECKPOINT, orjson.dumps(state))
