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
    the same trace at any concurrency."""

    step_limit_name = "depth"

    def __init__(
        self,
        mutator: Mutator,
        *,
        width: int = 4,
        depth: int = 4,
        mutations_per_parent: int = 4,
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
        self.width, self.depth, self.mutations_per_parent = width, depth, mutations_per_parent

    def params(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "depth": self.depth,
            "mutations_per_parent": self.mutations_per_parent,
        }

    def max_steps(self) -> int:
        return self.depth

    async def initial_population(self, run: SearchRun, start: Candidate) -> None:
        run.population = [start.id]

    async def step(self, run: SearchRun) -> bool:
        requests = [(parent, self.mutations_per_parent) for parent in run.members()]
        children = await run.expand(requests, run.rng())
        pool = run.ranked([*run.members(), *children])
        run.population = [c.id for c in pool[: self.width]]
        return bool(children) or (
            run.budget_left() and any(self.mutator.applicable(c.program) for c in run.members())
        )
