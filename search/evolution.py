"""Regularized (aging) evolution: tournament selection, one child per cycle, the oldest dies.

Real et al., "Regularized Evolution for Image Classifier Architecture Search" (2019), as in
pyglove's ``regularized_evolution`` and SAMMO's ``RegularizedEvolution``.
"""

from __future__ import annotations

from typing import Any

from mutators.base import Mutator
from sammo_core.errors import ConfigError
from search.base import Search, SearchRun
from search.candidate import Candidate

__all__ = ["RegularizedEvolution"]


class RegularizedEvolution(Search):
    """The population starts as the start program plus mutations of it; each later step
    samples ``tournament_size`` members, mutates the best, adds the child and drops the
    oldest member.
    """

    def __init__(
        self,
        mutator: Mutator,
        *,
        population_size: int = 8,
        tournament_size: int = 3,
        cycles: int = 20,
        **kwargs: Any,
    ) -> None:
        if population_size < 2:
            raise ConfigError(f"population_size must be >= 2; got {population_size}")
        if not 2 <= tournament_size <= population_size:
            raise ConfigError(
                f"tournament_size must be within [2, population_size={population_size}]; "
                f"got {tournament_size}"
            )
        if cycles < 1:
            raise ConfigError(f"cycles must be >= 1; got {cycles}")
        super().__init__(mutator, **kwargs)
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.cycles = cycles

    def params(self) -> dict[str, Any]:
        return {
            "population_size": self.population_size,
            "tournament_size": self.tournament_size,
            "cycles": self.cycles,
        }

    def max_steps(self) -> int:
        return self.cycles

    async def initial_population(self, run: SearchRun, start: Candidate) -> None:
        run.population = [start.id]
        rng = run.rng()  # step 0
        attempts = 0
        while len(run.population) < self.population_size and attempts < 3:
            attempts += 1
            wanted = self.population_size - len(run.population)
            for mutation in await run.propose(start, wanted, rng):
                child = await run.add(mutation, start)
                if child is not None:
                    run.population.append(child.id)

    async def step(self, run: SearchRun) -> bool:
        rng = run.rng()
        members = run.members()
        contestants = rng.sample(members, min(self.tournament_size, len(members)))
        parent = run.ranked(contestants)[0]
        for mutation in await run.propose(parent, 1, rng):
            child = await run.add(mutation, parent)
            if child is not None:
                run.population.append(child.id)
                if len(run.population) > self.population_size:
                    run.population.pop(0)  # aging: the oldest member dies
        return True
