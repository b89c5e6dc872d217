"""Build a :class:`~benchmarks.suites.suite.BenchTask` from a task's splits, its start program and
the suite's defaults (:class:`SuiteDefaults`), with the command line's options over them: the
rows kept, the objectives, the mutator and the search factory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.datasets import TaskSplits
from benchmarks.suites.operators import mutator_of
from benchmarks.suites.suite import BenchTask, SuiteOptions
from mutators.base import Mutator
from sammo_core.components import Output
from sammo_core.data import DataTable
from sammo_core.errors import ConfigError
from sammo_core.objectives import (
    Accuracy,
    LabelAccuracy,
    Objective,
)
from search.base import Search
from search.budget import SearchBudget
from search.candidate import Candidate
from search.result import SearchResult
from search.strategies import pick_strategy


def quality_objective(splits: TaskSplits) -> Objective:
    return LabelAccuracy(splits.labels) if splits.labels else Accuracy()


@dataclasses.dataclass(frozen=True)
class SuiteDefaults:
    budget: str
    strategy: str
    operators: str
    width: int = 4
    depth: int = 8
    mutations_per_parent: int = 4
    scored: bool = False


def _make_search(
    strategy: str,
    *,
    mutator: Mutator | None,
    objectives: Sequence[Objective],
    budget: SearchBudget,
    options: SuiteOptions,
    defaults: SuiteDefaults,
) -> Callable[[], Search]:
    from search.racing import Racing
    from search.strategies import StrategySettings

    common: dict[str, Any] = {
        "objectives": list(objectives),
        "budget": budget,
        "seed": options.seed,
        "max_concurrency": options.concurrency,
        "racing": Racing(options.racing),  # type: ignore[arg-type]
    }
    # Enough steps that the candidate budget, not the step count, ends the search.
    planned = budget.candidates or 48
    size = max(2, min(8, planned // 4))  # evolution's population
    settings = StrategySettings(
        width=defaults.width,
        depth=defaults.depth,
        mutations_per_parent=defaults.mutations_per_parent,
        population=size,
        tournament=min(3, size),
        cycles=planned,
        steps=max(1, -(-planned // 4)),
        batch_size=4,
    )
    factory = pick_strategy(strategy)

    def build() -> Search:
        return factory(mutator if factory.needs_mutator else None, settings, **common)

    return build


def _cap(table: DataTable, options: SuiteOptions, split: str = "train") -> DataTable:
    rows = options.rows(split)
    return table if rows is None else table[:rows]


def assemble(
    suite: str,
    splits: TaskSplits,
    program: Output,
    *,
    objectives: Sequence[Objective],
    options: SuiteOptions,
    defaults: SuiteDefaults,
    notes: str,
    mutator: Mutator | None = None,
    select: Callable[[SearchResult], Candidate] | None = None,
    space_size: int | None = None,
) -> BenchTask:
    strategy = options.strategy or defaults.strategy
    operators = options.operators or defaults.operators
    if strategy == "enumerate" and space_size is None:
        raise ConfigError(
            f"suite {suite!r} has no search space to enumerate; use --strategy beam, "
            "evolution or random (enumerate is for rag-parsing)"
        )
    if strategy != "enumerate" and mutator is None:
        mutator = mutator_of(operators)
    budget_text = options.budget or defaults.budget
    budget = SearchBudget.parse(budget_text)
    scored = defaults.scored if options.scored is None else options.scored
    if scored and splits.labels:
        from sammo_core.loading import with_labels

        program = with_labels(program, list(splits.labels))
    train = _cap(splits.train, options)
    params = {
        "strategy": strategy,
        "budget": budget_text,
        "seed": options.seed,
        "operators": "pg.oneof grid" if strategy == "enumerate" else operators,
        "max_rows": options.max_rows,
        "val_rows": options.val_rows,
        "test_rows": options.test_rows,
        "space_size": space_size,
        "scoring": "label likelihood" if scored and splits.labels else "generated text",
        **({"racing": options.racing} if options.racing != "off" else {}),
    }
    return BenchTask(
        suite=suite,
        name=splits.name,
        program=program,
        train=train if len(train) else None,
        val=_cap(splits.val, options, "val"),
        test=_cap(splits.test, options, "test"),
        objectives=tuple(objectives),
        mutator=None if strategy == "enumerate" else mutator,
        make_search=_make_search(
            strategy,
            mutator=mutator,
            objectives=objectives,
            budget=budget,
            options=options,
            defaults=defaults,
        ),
        notes=notes,
        params=params,
        select=select,
    )
