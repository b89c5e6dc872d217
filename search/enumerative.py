"""Enumerative search over a search space written with ``pg.oneof`` (and friends).

>>> import pyglove as pg
>>> from sammo_core import GenerateText, InputData, MetaPrompt, Output, Section
>>> space = Output(GenerateText(MetaPrompt(
...     [Section("Task", [pg.oneof(["Answer yes or no.", "Reply Yes or No."])]), InputData()],
...     section_format=pg.oneof(["markdown", "xml"]))))
>>> len(list(candidates_of(space)))
4
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pyglove as pg

from mutators.base import Mutation
from sammo_core.components import Output
from sammo_core.data import DataTable
from sammo_core.errors import ConfigError
from search.base import Search, SearchRun
from search.candidate import Candidate
from search.result import SearchResult

__all__ = ["EnumerativeSearch", "candidates_of"]


def candidates_of(space: Output) -> Iterator[Output]:
    """Every program of ``space``, in pyglove's enumeration order."""
    yield from pg.iter(space)


class EnumerativeSearch(Search):
    """Evaluates the programs of a ``pg.oneof`` search space, ``batch_size`` per step, in
    enumeration order (or a seeded shuffle of it), until the space or the budget ends.

    The start program passed to ``run`` is the space itself; its first point is the start.
    The checkpoint fingerprint covers the whole space, so ``resume=True`` refuses a checkpoint
    of another space even when both begin with the same point.
    """

    def __init__(self, *, batch_size: int = 4, shuffle: bool = False, **kwargs: Any) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1; got {batch_size}")
        super().__init__(None, **kwargs)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self._points: list[Output] = []
        self._space: Output | None = None

    def params(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "shuffle": self.shuffle}

    def _order(self, space: Output) -> list[Output]:
        points = list(candidates_of(space))
        if self.shuffle:
            random.Random(f"{self.seed}/order").shuffle(points)
        return points

    def fingerprint(self, program: Output, train: DataTable | None, val: DataTable) -> str:
        # ``program`` is only the space's first point: fingerprint the space it came from.
        return super().fingerprint(self._space or program, train, val)

    async def initial_population(self, run: SearchRun, start: Candidate) -> None:
        run.population = [start.id]

    async def step(self, run: SearchRun) -> bool:
        if not self._points:
            raise ConfigError("EnumerativeSearch.run needs a search space")  # pragma: no cover
        offset = (run.step - 1) * self.batch_size + 1  # point 0 was the start
        batch = self._points[offset : offset + self.batch_size]
        for i, point in enumerate(batch):
            child = await run.add(
                Mutation(point, f"point {offset + i} of the search space", "enumerate"), None
            )
            if child is not None:
                run.population.append(child.id)
        return offset + self.batch_size < len(self._points)

    async def run(self, program: Output, **kwargs: Any) -> SearchResult:
        """Search the space ``program``; it must hold at least one ``pg.oneof``."""
        if pg.is_deterministic(program):
            raise ConfigError(
                "EnumerativeSearch needs a search space: write choices with pg.oneof([...]) "
                "in the program's fields, or use beam/evolution/random search with mutators"
            )
        self._points = self._order(program)
        self._space = program
        return await super().run(self._points[0], **kwargs)
