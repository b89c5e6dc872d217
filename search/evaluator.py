"""Scoring candidate programs on a split, once per distinct compiled graph."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sammo_core.components import Output
from sammo_core.context import RenderCache
from sammo_core.data import DataTable
from sammo_core.graph import FunctionGraph, compile
from sammo_core.objectives import Objective, Score, evaluate
from sammo_core.results import ResultTable
from sammo_core.runners.accounting import CompletionCap
from sammo_core.runners.base import Runner
from sammo_core.runners.throttle import ThrottledRunner, ThrottleStats

__all__ = ["Evaluation", "Evaluator"]


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Scores of one program on one split, with the result table they came from."""

    hash: str
    scores: dict[str, Score]
    results: ResultTable


class Evaluator:
    """Runs programs on ``data`` through ``runner`` and scores them with ``objectives``.

    Programs whose compiled graphs hash equal are evaluated once: a second request returns the
    first evaluation and makes no call. With ``max_tokens_per_input``, a call whose
    ``GenerateText`` sets no ``max_tokens`` is capped at that many tokens per input it packs.

    Several programs may be evaluated at once (a search step evaluates all its children
    together); their calls share one limit of ``max_concurrency`` calls in flight.

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
        runner: Runner,
        objectives: Sequence[Objective],
        max_concurrency: int = 32,
        *,
        max_tokens_per_input: int | None = None,
    ) -> None:
        self.data = data
        self.runner = runner
        self.objectives = list(objectives)
        self.max_concurrency = max_concurrency
        self.max_tokens_per_input = max_tokens_per_input
        self._memo: dict[str, Evaluation] = {}
        # Static parts shared by candidates (say, every section but the one a child changed)
        # are rendered once for the whole search.
        self._renders = RenderCache()
        # Outside any accounting wrapper, so a call waiting for a slot has reserved nothing.
        self._limited = ThrottledRunner(runner, max_concurrency)

    @property
    def stats(self) -> ThrottleStats:
        """Calls sent through the shared limit, and the most that were in flight at once."""
        return self._limited.stats

    async def evaluate(self, program: Output, graph: FunctionGraph | None = None) -> Evaluation:
        """Score ``program``; pass its compiled ``graph`` if the caller has it already."""
        graph = graph if graph is not None else compile(program)
        known = self._memo.get(graph.hash)
        if known is not None:
            return known
        runner: Runner = self._limited
        if self.max_tokens_per_input is not None:
            runner = CompletionCap(runner, self.max_tokens_per_input * program.inputs_per_call)
        results = await graph.run(
            self.data, runner, max_concurrency=self.max_concurrency, render_cache=self._renders
        )
        evaluation = Evaluation(graph.hash, evaluate(results, self.objectives), results)
        self._memo[graph.hash] = evaluation
        return evaluation
