"""Search strategies by name: the entry points of group ``sammo_core.strategies``.

Each entry is a :class:`StrategyFactory`: it builds a fresh :class:`~search.base.Search` (a
search holds state) from the operators, the settings a caller chose (:class:`StrategySettings`:
the command line's flags, or a suite's defaults) and the settings every strategy shares (the
objectives, budget, seed, concurrency, racing). ``optimize --strategy`` and ``bench run
--strategy`` both take their choices from :data:`STRATEGIES`, so a plugin's strategy appears in
both::

    # a plugin's pyproject.toml
    [project.entry-points."sammo_core.strategies"]
    annealing = "sammo_annealing:factory"

>>> sorted(STRATEGIES)
['beam', 'enumerate', 'evolution', 'random']
>>> from mutators.structure import DropSection
>>> from search.budget import SearchBudget
>>> search = STRATEGIES["beam"](DropSection(), StrategySettings(width=2),
...                             budget=SearchBudget(candidates=4))
>>> type(search).__name__, search.params()["width"]
('BeamSearch', 2)
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Protocol

from sammo_core.errors import ConfigError
from sammo_core.registry import Registry

if TYPE_CHECKING:
    from mutators.base import Mutator
    from search.base import Search

__all__ = ["STRATEGIES", "StrategyFactory", "StrategySettings", "pick_strategy"]


@dataclasses.dataclass(frozen=True)
class StrategySettings:
    """What a caller chose for a strategy; ``None`` leaves the strategy's own default.

    Each strategy reads the fields it knows: beam ``width``, ``depth``,
    ``mutations_per_parent``, ``pipelined``; evolution ``population``, ``tournament``, ``cycles``,
    ``parallel``; random ``steps``; enumerate ``batch_size``.
    """

    width: int | None = None
    depth: int | None = None
    mutations_per_parent: int | None = None
    population: int | None = None
    tournament: int | None = None
    cycles: int | None = None
    parallel: int | None = None
    steps: int | None = None
    batch_size: int | None = None
    pipelined: bool | None = None

    def chosen(self, **names: str) -> dict[str, Any]:
        """The fields set, under the names a strategy's constructor takes.

        >>> StrategySettings(width=3).chosen(width="width", depth="depth")
        {'width': 3}
        """
        return {
            arg: getattr(self, field)
            for field, arg in names.items()
            if getattr(self, field) is not None
        }


class StrategyFactory(Protocol):
    """Builds a fresh search. ``mutator`` is ``None`` for strategies that enumerate a space
    (``needs_mutator`` False); ``common`` holds the :class:`~search.base.Search` keyword
    arguments every strategy takes (objectives, budget, seed, max_concurrency, max_tokens,
    racing)."""

    needs_mutator: bool

    def __call__(
        self, mutator: Mutator | None, settings: StrategySettings, **common: Any
    ) -> Search: ...


def _needs(mutator: Mutator | None, name: str) -> Mutator:
    if mutator is None:
        raise ConfigError(f"strategy {name!r} needs operators (--operators)")
    return mutator


class _Beam:
    needs_mutator = True

    def __call__(
        self, mutator: Mutator | None, settings: StrategySettings, **common: Any
    ) -> Search:
        from search.beam import BeamSearch

        chosen = settings.chosen(
            width="width",
            depth="depth",
            mutations_per_parent="mutations_per_parent",
            pipelined="pipelined",
        )
        return BeamSearch(_needs(mutator, "beam"), **chosen, **common)


class _Evolution:
    needs_mutator = True

    def __call__(
        self, mutator: Mutator | None, settings: StrategySettings, **common: Any
    ) -> Search:
        from search.evolution import RegularizedEvolution

        chosen = settings.chosen(
            population="population_size",
            tournament="tournament_size",
            cycles="cycles",
            parallel="parallel",
        )
        return RegularizedEvolution(_needs(mutator, "evolution"), **chosen, **common)


class _Random:
    needs_mutator = True

    def __call__(
        self, mutator: Mutator | None, settings: StrategySettings, **common: Any
    ) -> Search:
        from search.random_search import RandomSearch

        return RandomSearch(_needs(mutator, "random"), **settings.chosen(steps="steps"), **common)


class _Enumerate:
    needs_mutator = False

    def __call__(
        self, mutator: Mutator | None, settings: StrategySettings, **common: Any
    ) -> Search:
        from search.enumerative import EnumerativeSearch

        return EnumerativeSearch(**settings.chosen(batch_size="batch_size"), **common)


beam = _Beam()
evolution = _Evolution()
random = _Random()
enumerate_ = _Enumerate()

#: Strategy name -> factory: the entry points of group ``sammo_core.strategies``.
STRATEGIES: Registry[StrategyFactory] = Registry("sammo_core.strategies", "strategy")


def pick_strategy(name: str) -> StrategyFactory:
    """The factory of strategy ``name``, or a ConfigError listing the strategies there are.

    >>> pick_strategy("annealing")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: unknown strategy 'annealing'; use: beam, enumerate, \
evolution, random
    """
    return STRATEGIES.pick(name)
