"""What a suite is: the options the command line may change (:class:`SuiteOptions`), one task
ready to search (:class:`BenchTask`), a named family of tasks (:class:`Suite`), and the lookup
of the registered suites by name (:func:`get_suite`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any

from benchmarks import datasets
from benchmarks.registry import SUITES
from mutators.base import Mutator
from sammo_core.components import Output
from sammo_core.data import DataTable
from sammo_core.errors import ConfigError
from sammo_core.objectives import Objective
from search.base import Search
from search.budget import SearchBudget
from search.candidate import Candidate
from search.result import SearchResult
from search.strategies import pick_strategy

DataDir = str | os.PathLike[str] | None


@dataclasses.dataclass(frozen=True)
class SuiteOptions:
    """What the command line may change about a suite; ``None`` keeps the suite's default.

    ``budget`` is a :meth:`SearchBudget.parse` string (``"48"`` or ``"candidates=48,calls=
    3000"``); ``max_rows`` caps each of train, validation and test; ``val_rows`` and
    ``test_rows`` cap one split each, over ``max_rows``; ``operators`` replaces the suite's
    operator groups (those of ``sammo-core optimize --operators``).

    >>> SuiteOptions(strategy="beam", max_rows=10).max_rows
    10
    >>> SuiteOptions(max_rows=10, test_rows=50).rows("test"), SuiteOptions(max_rows=10).rows("val")
    (50, 10)
    >>> SuiteOptions(strategy="annealing")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: unknown strategy 'annealing'; use: beam, enumerate, evolution, \
random
    """

    budget: str | None = None
    strategy: str | None = None
    seed: int = 0
    max_rows: int | None = None
    operators: str | None = None
    concurrency: int = 32
    val_rows: int | None = None
    test_rows: int | None = None
    #: Answers read by label likelihood (the call lists the task's labels, so a runner that
    #: scores them ranks them); ``None``: the suite's default (``base-model``: yes).
    scored: bool | None = None
    #: The examples ``base-model`` starts from (``None``: :data:`BASE_MODEL_START_SHOTS`).
    start_shots: int | None = None
    #: How candidates race (:mod:`search.racing`): ``off``, ``halving`` or ``paired``.
    racing: str = "off"

    def __post_init__(self) -> None:
        if self.strategy is not None:
            pick_strategy(self.strategy)
        for flag, value in (
            ("--max-rows", self.max_rows),
            ("--val-rows", self.val_rows),
            ("--test-rows", self.test_rows),
        ):
            if value is not None and value < 1:
                raise ConfigError(f"{flag} must be >= 1; got {value}")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1; got {self.concurrency}")
        if self.budget is not None:
            SearchBudget.parse(self.budget)  # fail early on a malformed budget

    def rows(self, split: str) -> int | None:
        """How many rows of ``split`` (``train``, ``val`` or ``test``) to keep; None: all."""
        own = {"val": self.val_rows, "test": self.test_rows}.get(split)
        return own if own is not None else self.max_rows


@dataclasses.dataclass(frozen=True)
class BenchTask:
    """One task of a suite, ready to search.

    ``program`` is the start program (for ``enumerate``, the ``pg.oneof`` search space whose
    first point is the baseline). ``make_search`` builds a fresh strategy (they hold state).
    ``select`` picks the reported winner from the result (default: ``result.best``).
    ``params`` records the settings for ``results.json``.
    """

    suite: str
    name: str
    program: Output
    train: DataTable | None
    val: DataTable
    test: DataTable
    objectives: tuple[Objective, ...]
    mutator: Mutator | None
    make_search: Callable[[], Search]
    notes: str
    params: Mapping[str, Any]
    select: Callable[[SearchResult], Candidate] | None = None

    def winner(self, result: SearchResult) -> Candidate:
        """The candidate reported as optimized."""
        return result.best if self.select is None else self.select(result)


@dataclasses.dataclass(frozen=True)
class Suite:
    """A named family of tasks: ``tasks(data_dir)`` lists them, ``build`` makes one; ``data``
    names the data sets it reads (``sammo-core data fetch NAME``). Suites are the entry
    points of group ``sammo_core.suites`` (:data:`SUITES`)."""

    name: str
    description: str
    tasks: Callable[[DataDir], list[str]]
    build: Callable[[str, DataDir, SuiteOptions], BenchTask]
    data: tuple[str, ...] = ()


def tasks_in(suite: str) -> Callable[[DataDir], list[str]]:
    def tasks(data_dir: DataDir) -> list[str]:
        return list(datasets.list_tasks(data_dir)[suite])

    return tasks


def get_suite(name: str) -> Suite:
    """The suite called ``name``.

    >>> get_suite("apo").name
    'apo'
    >>> get_suite("poetry")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: unknown suite 'poetry'; use: apo, base-model, compression, \
instruction-tuning, quick, rag-parsing
    """
    return SUITES.pick(name)
