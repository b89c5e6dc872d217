"""Random search: random walks of mutations from the start program (or random points of a
``pg.oneof`` space when no mutator is given)."""

from __future__ import annotations

import random
from typing import Any

from mutators.base import Mutation, Mutator
from sammo_core.errors import BudgetExceededError, ConfigError
from search.base import Batch, Search, SearchRun, gather_all
from search.candidate import Candidate
from search.charging import Tab, charging

__all__ = ["RandomSearch"]


class RandomSearch(Search):
    """Each step draws ``samples_per_step`` programs, each made by applying between
    ``min_walk`` and ``max_walk`` random mutations in a row to the start program, and
    evaluates them. A baseline that any guided strategy should beat for the same budget.

    The walks of a step run at once, each with its own random source drawn from the step's,
    and their programs are evaluated at once."""

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
        seeds = [rng.getrandbits(64) for _ in range(self.samples_per_step)]

        async def walk(seed: int) -> Batch | BudgetExceededError:
            walk_rng, program, steps = random.Random(seed), start.program, []
            with charging(Tab()) as tab:
                try:
                    for _ in range(walk_rng.randint(self.min_walk, self.max_walk)):
                        if not self.mutator.applicable(program):
                            break
                        walk_parent = Candidate(-1, program, "", {}, operator="walk")
                        proposals = await run.propose(walk_parent, 1, walk_rng)
                        if not proposals:
                            break
                        program = proposals[0].program
                        steps.append(proposals[0])
                except BudgetExceededError as exc:
                    return exc
            description = "; ".join(m.description for m in steps)
            child = [Mutation(program, description, steps[-1].operator)] if steps else []
            return Batch(start, child, tab.usage)

        # The walks run at once, each from its own random source; so do their evaluations.
        outcomes = await gather_all([walk(seed) for seed in seeds])
        children = await run.add_all([o for o in outcomes if isinstance(o, Batch)])
        run.population.extend(child.id for child in children)
        refused = next((o for o in outcomes if isinstance(o, BudgetExceededError)), None)
        if refused is not None:
            raise refused
        return True
