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
    (cycle) samples ``tournament_size`` members, mutates the best, adds the child and drops
    the oldest member.

    ``cycles=None`` (the default) runs until the budget is spent, so a budget of N candidates
    gives N candidates, unless the search converges: it stops when ``patience`` cycles in a
    row (default: twice the population) add no new candidate.

    ``parallel`` tournaments are held per cycle, all from the population the cycle starts with,
    and their children are evaluated at once, then join the population in order (each pushing
    out the oldest member): one child's rows rarely fill the concurrency limit, ``parallel``
    children's do. ``parallel=1`` (the default) is the classic one-child cycle, trace for trace.

    >>> from mutators.structure import DropSection
    >>> from search.budget import SearchBudget
    >>> RegularizedEvolution(DropSection(), budget=SearchBudget(candidates=48)).max_steps()
    >>> RegularizedEvolution(DropSection(), budget=SearchBudget(usd=1.0))
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: evolution without a cycles limit needs a candidates, calls or \
tokens budget to end (a dollar budget does not limit unpriced models); set cycles=N (--cycles N)
    """

    step_limit_name = "cycles"

    def __init__(
        self,
        mutator: Mutator,
        *,
        population_size: int = 8,
        tournament_size: int = 3,
        cycles: int | None = None,
        patience: int | None = None,
        parallel: int = 1,
        **kwargs: Any,
    ) -> None:
        if population_size < 2:
            raise ConfigError(f"population_size must be >= 2; got {population_size}")
        if not 2 <= tournament_size <= population_size:
            raise ConfigError(
                f"tournament_size must be within [2, population_size={population_size}]; "
                f"got {tournament_size}"
            )
        if cycles is not None and cycles < 1:
            raise ConfigError(f"cycles must be >= 1 or None (until the budget ends); got {cycles}")
        if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
            raise ConfigError(f"parallel (tournaments per cycle) must be >= 1; got {parallel!r}")
        if patience is not None and patience < 1:
            raise ConfigError(
                f"patience must be >= 1 or None (twice the population); got {patience}"
            )
        super().__init__(mutator, **kwargs)
        budget = self.budget
        if (
            cycles is None
            and budget.candidates is None
            and budget.calls is None
            and (budget.tokens is None)
        ):
            raise ConfigError(
                "evolution without a cycles limit needs a candidates, calls or tokens budget to "
                "end (a dollar budget does not limit unpriced models); set cycles=N (--cycles N)"
            )
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.cycles = cycles
        self.patience = patience if patience is not None else 2 * population_size
        self.parallel = parallel

    def params(self) -> dict[str, Any]:
        return {
            "population_size": self.population_size,
            "tournament_size": self.tournament_size,
            "cycles": self.cycles,
            "patience": self.patience,
            **({"parallel": self.parallel} if self.parallel > 1 else {}),
        }

    def max_steps(self) -> int | None:
        return self.cycles

    async def initial_population(self, run: SearchRun, start: Candidate) -> None:
        run.population = [start.id]
        rng = run.rng()  # step 0
        attempts = 0
        while len(run.population) < self.population_size and attempts < 3:
            attempts += 1
            wanted = self.population_size - len(run.population)
            # the children of one attempt are evaluated at once
            for child in await run.expand([(start, wanted)], rng):
                run.population.append(child.id)

    async def step(self, run: SearchRun) -> bool:
        # Counted from the trace, so a resumed run sees the same streak.
        last_new = max(c.step for c in run.candidates)
        if run.step - 1 - last_new >= self.patience:
            run.stopped = f"converged: no new candidate in {self.patience} cycles"
            return False
        rng = run.rng()
        members = run.members()
        parents = []
        for _ in range(self.parallel):
            contestants = rng.sample(members, min(self.tournament_size, len(members)))
            parents.append((run.ranked(contestants)[0], 1))
        for child in await run.expand(parents, rng):
            run.population.append(child.id)
            if len(run.population) > self.population_size:
                run.population.pop(0)  # aging: the oldest member dies
        return True
