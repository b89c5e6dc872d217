"""Scoring candidate programs on a split: once per distinct set of requests, rung by rung
when candidates race (see :mod:`search.racing`)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

import pyglove as pg

from sammo_core.components import Output
from sammo_core.context import RenderCache
from sammo_core.data import DataTable
from sammo_core.errors import ConfigError
from sammo_core.graph import FunctionGraph, compile
from sammo_core.objectives import Objective, Score, evaluate
from sammo_core.results import ResultTable
from sammo_core.runners.accounting import CompletionCap
from sammo_core.runners.base import Runner
from sammo_core.runners.throttle import ThrottledRunner, ThrottleStats
from search.panel import Panel, combine, scored_on_each
from search.racing import Race

__all__ = ["Evaluation", "Evaluator"]


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Scores of one program on one split, with the result table they came from.

    When candidates race, ``rows`` is how many validation rows were scored and ``rung`` the
    last rung reached (``None`` otherwise); ``eliminated`` says the race stopped it before the
    whole split.
    """

    hash: str
    scores: dict[str, Score]
    results: ResultTable
    rows: int | None = None
    rung: int | None = None
    eliminated: bool = False


class Evaluator:
    """Runs programs on ``data`` through ``runner`` and scores them with ``objectives``.

    Programs whose compiled graphs hash equal are evaluated once: a second request returns the
    first evaluation and makes no call. (A search also skips programs that differ as trees but
    send the same requests: see :meth:`digest`.) With ``max_tokens_per_input``, a call whose
    ``GenerateText`` sets no ``max_tokens`` is capped at that many tokens per input it packs.

    Several programs may be evaluated at once (a search step evaluates all its children
    together); their calls share one limit of ``max_concurrency`` calls in flight.

    ``runner`` may be a :class:`~search.panel.Panel`: each program is then run on every model
    of the panel (each model with its own limit of ``max_concurrency``), and its scores are the
    panel's combined scores plus each model's (see :mod:`search.panel`); :attr:`runner` is the
    first model's, and the evaluation's ``results`` its result table. Racing needs one model.

    >>> import asyncio
    >>> from sammo_core.objectives import Accuracy
    >>> from sammo_core.runners import ScriptedRunner
    >>> from sammo_core.testing.synthetic import items, optimal_program, start_program
    >>> model = ScriptedRunner(default="yes", latency=0.01)
    >>> evaluator = Evaluator(items(20), model, [Accuracy()], max_concurrency=4)
    >>> async def both() -> list[Evaluation]:
    ...     return await asyncio.gather(*(evaluator.evaluate(p())
    ...                                   for p in (start_program, optimal_program)))
    >>> [e.scores["accuracy"].value for e in asyncio.run(both())]
    [0.5, 0.5]
    >>> evaluator.stats.max_in_flight, evaluator.stats.calls
    (4, 40)
    """

    def __init__(
        self,
        data: DataTable,
        runner: Runner | Panel,
        objectives: Sequence[Objective],
        max_concurrency: int = 32,
        *,
        max_tokens_per_input: int | None = None,
    ) -> None:
        self.data = data
        self.panel = runner if isinstance(runner, Panel) else None
        self.runner: Runner = runner.first if isinstance(runner, Panel) else runner
        self.objectives = list(objectives)
        # What each model's results are scored on (a NAME@MODEL objective reads NAME there).
        self._scored = scored_on_each(self.objectives, self.panel)
        self.max_concurrency = max_concurrency
        self.max_tokens_per_input = max_tokens_per_input
        self._memo: dict[str, Evaluation] = {}
        # Static parts shared by candidates (say, every section but the one a child changed)
        # are rendered once for the whole search.
        self._renders = RenderCache()
        # Outside any accounting wrapper, so a call waiting for a slot has reserved nothing.
        self._limited = ThrottledRunner(self.runner, max_concurrency)
        self._members = (
            None
            if self.panel is None
            else {
                model: self._limited if i == 0 else ThrottledRunner(member, max_concurrency)
                for i, (model, member) in enumerate(self.panel.runners.items())
            }
        )

    @property
    def stats(self) -> ThrottleStats:
        """Calls sent through the shared limit, and the most that were in flight at once."""
        return self._limited.stats

    async def evaluate(
        self, program: Output, graph: FunctionGraph | None = None, *, race: Race | None = None
    ) -> Evaluation:
        """Score ``program``; pass its compiled ``graph`` if the caller has it already.

        With ``race``, it is scored rung by rung and may stop before the whole split.
        """
        graph = graph if graph is not None else compile(program)
        known = self._memo.get(graph.hash)
        if known is not None:
            return known
        evaluation = await self._score(program, graph, race)
        self._memo[graph.hash] = evaluation
        return evaluation

    async def digest(self, graph: FunctionGraph) -> str | None:
        """What a run of ``graph`` on the split depends on, without a call (see
        :meth:`~sammo_core.graph.FunctionGraph.requests_digest`): equal digests, equal results."""
        return await graph.requests_digest(self.data, self._renders)

    async def _score(self, program: Output, graph: FunctionGraph, race: Race | None) -> Evaluation:
        if self._members is not None:
            assert self.panel is not None
            if race is not None:
                raise ConfigError(
                    "racing scores candidates on a few rows of one model; with several models "
                    "use --racing off"
                )
            runs = [self._run(program, graph, None, member) for member in self._members.values()]
            member_tables = await asyncio.gather(*runs)
            per_model = {
                model: evaluate(table, self._scored)
                for model, table in zip(self._members, member_tables, strict=True)
            }
            scores = combine(per_model, self._scored, self.panel.across)
            return Evaluation(graph.hash, scores, member_tables[0])
        if race is None:
            results = await self._run(program, graph, None)
            return Evaluation(graph.hash, evaluate(results, self.objectives), results)
        tables: list[ResultTable] = []
        done, runs, ran = 0, program, graph
        for rung, size in enumerate(race.sizes):
            table = await self._run(runs, ran, race.order[done:size])
            if not tables and table.label_prior is not None and not list(program.label_prior):
                # Later rungs divide by the prior this one fitted, without fitting it again.
                labels = [str(x) for x in program.child.labels]
                prior = [table.label_prior[label] for label in labels]
                runs = pg.clone(program, deep=True, override={"label_prior": prior})
                ran = compile(runs)
            tables.append(table)
            done = size
            merged = ResultTable.from_rows(
                [row for t in tables for row in t], tables[0].label_prior
            )
            scores = evaluate(merged, self.objectives)
            last = size == race.sizes[-1]
            if last or not race.goes_on(scores, size):
                return Evaluation(
                    graph.hash, scores, merged, rows=size, rung=rung, eliminated=not last
                )
        raise AssertionError("unreachable: the last rung ends the race")  # pragma: no cover

    async def _run(
        self,
        program: Output,
        graph: FunctionGraph,
        rows: Sequence[int] | None,
        member: Runner | None = None,
    ) -> ResultTable:
        """Run ``program`` on the rows ``rows`` of the split (all when ``None``) through
        ``member`` (a panel's model; default: the one runner); the result rows keep their
        indices in the split."""
        runner: Runner = self._limited if member is None else member
        if self.max_tokens_per_input is not None:
            runner = CompletionCap(runner, self.max_tokens_per_input * program.inputs_per_call)
        data = self.data if rows is None else self.data.select(rows)
        results = await graph.run(
            data, runner, max_concurrency=self.max_concurrency, render_cache=self._renders
        )
        if rows is None:
            return results
        return ResultTable.from_rows(
            [dataclasses.replace(r, index=rows[r.index]) for r in results], results.label_prior
        )
