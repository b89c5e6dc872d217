"""Beam search: expand every program in the beam, keep the best ``width``.

>>> import asyncio
>>> from mutators.structure import DropSection
>>> from search.budget import SearchBudget
>>> BeamSearch(DropSection(), width=2, depth=3, budget=SearchBudget(candidates=10)).max_steps()
3
"""

from __future__ import annotations

from typing import Any

from mutators.base import Mutator
from sammo_core.errors import ConfigError
from search.base import Search, SearchRun
from search.candidate import Candidate

__all__ = ["BeamSearch"]


class BeamSearch(Search):
    """Each step mutates every beam member ``mutations_per_parent`` times, evaluates the new
    children on the validation split, and keeps the best ``width`` of beam and children.

    A step proposes for all members at once and evaluates all their children at once (under
    the search's ``max_concurrency``), taking results in a fixed order, so the same seed gives
    the same trace at any concurrency.

    ``pipelined=True`` proposes each step while the step before it is still scored, from the
    beam as the steps before that left it: step 2 mutates the start again, step ``k + 1`` the
    beam after step ``k - 1``. The calls of the next step are waiting when the last of a
    step's answers come in, so no slot idles between steps. It is a different search (each
    step sees one step less), with a trace of its own, still the same for the same seed at
    any concurrency and after a resume; without it, the trace is as it always was. Racing
    needs the default (``pipelined=False``).

    >>> from mutators.structure import DropSection
    >>> from search.budget import SearchBudget
    >>> BeamSearch(DropSection(), pipelined=True, budget=SearchBudget(candidates=8)).params()
    {'width': 4, 'depth': 4, 'mutations_per_parent': 4, 'pipelined': True}
    """

    step_limit_name = "depth"

    def __init__(
        self,
        mutator: Mutator,
        *,
        width: int = 4,
        depth: int = 4,
        mutations_per_parent: int = 4,
        pipelined: bool = False,
        **kwargs: Any,
    ) -> None:
        for name, value in (
            ("width", width),
            ("depth", depth),
            ("mutations_per_parent", mutations_per_parent),
        ):
            if value < 1:
                raise ConfigError(f"BeamSearch {name} must be >= 1; got {value}")
        super().__init__(mutator, **kwargs)
        if pipelined and self.racing.on:
            raise ConfigError(
                "a pipelined beam proposes while candidates are scored, and racing decides "
                "on the candidates scored before: use one of them (--racing off, or drop "
                "--pipeline)"
            )
        self.width, self.depth, self.mutations_per_parent = width, depth, mutations_per_parent
        self.pipelined = pipelined

    def params(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "depth": self.depth,
            "mutations_per_parent": self.mutations_per_parent,
            **({"pipelined": True} if self.pipelined else {}),
        }

    def max_steps(self) -> int:
        return self.depth

    async def initial_population(self, run: SearchRun, start: Candidate) -> None:
        run.population = [start.id]

    async def step(self, run: SearchRun) -> bool:
        if self.pipelined:
            return await self._pipelined_step(run)
        children = await run.expand(self._requests(run), run.rng())
        return self._keep(run, children)

    def _requests(self, run: SearchRun) -> list[tuple[Candidate, int]]:
        return [(parent, self.mutations_per_parent) for parent in run.members()]

    def _keep(self, run: SearchRun, children: list[Candidate]) -> bool:
        """Keep the best ``width`` of beam and ``children``; whether the search goes on."""
        pool = run.ranked([*run.members(), *children])
        run.population = [c.id for c in pool[: self.width]]
        return bool(children) or (
            run.budget_left() and any(self.mutator.applicable(c.program) for c in run.members())
        )

    async def _pipelined_step(self, run: SearchRun) -> bool:
        """Record step ``run.step``, started ahead by the step before (or now), once step
        ``run.step + 1`` is proposed from the beam as it is before this one is recorded."""
        current, run.ahead = run.ahead, None
        if current is None:  # the first step, or the first after a resume
            current = run.start_step(run.step, self._requests(run))
        following = None
        try:
            await current.wait_planned()
            room = run.room()
            if run.step < self.depth and (room is None or room > 0):
                following = run.start_step(run.step + 1, self._requests(run))
                await following.wait_planned()
            current.release.set()
            children = await current.task
        except BaseException:
            for started in (current, following):
                if started is not None:
                    await started.cancel()
            raise
        run.ahead = following
        return self._keep(run, children) or following is not None
