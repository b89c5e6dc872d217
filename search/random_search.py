"""Random search: random walks of mutations from the start program (or random points of a
``pg.oneof`` space when no mutator is given)."""

from __future__ import annotations

from typing import Any

from mutators.base import Mutator
from sammo_core.errors import ConfigError
from search.base import Search, SearchRun
from search.candidate import Candidate

__all__ = ["RandomSearch"]


class RandomSearch(Search):
    """Each step draws ``samples_per_step`` programs, each made by applying between
    ``min_walk`` and ``max_walk`` random mutations in a row to the start program, and
    evaluates them. A baseline that any guided strategy should beat for the same budget."""

    def __init__(
        self,
        mutator: Mutator,
        *,
        samples_per_step: int = 4,
        steps: int = 10,
        min_walk: int = 1,
        max_walk: int = 3,
        **kwargs: Any,
    ) -> None:
        if samples_per_step < 1 or steps < 1:
            raise ConfigError("samples_per_step and steps must be >= 1")
        if not 1 <= min_walk <= max_walk:
            raise ConfigError(f"need 1 <= min_walk <= max_walk; got {min_walk}, {max_walk}")
        super().__init__(mutator, **kwargs)
        self.samples_per_step, self.steps = samples_per_step, steps
        self.min_walk, self.max_walk = min_walk, max_walk

    def params(self) -> dict[str, Any]:
        return {
            "samples_per_step": self.samples_per_step,
            "steps": self.steps,
            "min_walk": self.min_walk,
            "max_walk": self.max_walk,
        }

    def max_steps(self) -> int:
        return self.steps

    async def initial_population(self, run: SearchRun, start: Candidate) -> None:
        run.population = [start.id]

    async def step(self, run: SearchRun) -> bool:
        rng = run.rng()
        start = run.get(0)
        for _ in range(self.samples_per_step):
            program, steps = start.program, []
            for _ in range(rng.randint(self.min_walk, self.max_walk)):
                if not self.mutator.applicable(program):
                    break
                walk_parent = Candidate(-1, program, "", {}, operator="walk")
                proposals = await run.propose(walk_parent, 1, rng)
                if not proposals:
                    break
                program = proposals[0].program
                steps.append(proposals[0])
            if steps:
                last = steps[-1]
                description = "; ".join(m.description for m in steps)
                from mutators.base import Mutation

                child = await run.add(Mutation(program, description, last.operator), start)
                if child is not None:
                    run.population.append(child.id)
        return True
