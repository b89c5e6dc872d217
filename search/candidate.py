"""Candidates: evaluated programs with their lineage, scores and two kinds of cost.

A candidate's ``cost`` is what its program costs per validation input (calls, tokens, dollars,
the same whether the answers came from the model or a cache); ``spent_*`` is what this run
paid to get it: the proposer calls that produced it and the calls its evaluation sent.

>>> from sammo_core.results import ProgramCost
>>> c = Candidate(0, None, "h", {}, cost=ProgramCost(1.0, 40.0, 2.0), spent_calls=3)
>>> c.summary()["cost_per_input"]["prompt_tokens"], c.summary()["spent"]
(40.0, {'calls': 3, 'tokens': 0, 'usd': 0.0})
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sammo_core.components import Output
from sammo_core.objectives import Objective, Score
from sammo_core.results import ProgramCost
from sammo_core.runners.accounting import Usage

__all__ = ["Candidate", "fitness", "unattributed"]


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One evaluated program.

    ``scores`` are validation scores by objective name. ``cost`` is what the program costs
    per validation input, cache or not. ``spent_calls``, ``spent_tokens`` and ``spent_usd`` are
    what this run paid for the candidate since the one before it: the proposer calls that
    produced it (including proposals dropped as repeats) and its evaluation's calls; cache
    hits cost nothing. Summed over a run's candidates they give the run's usage, less any
    calls made after the last candidate (see ``SearchResult.unattributed``).
    """

    id: int
    program: Output
    hash: str
    scores: Mapping[str, Score]
    parent: int | None = None
    operator: str = "start"
    description: str = "the starting program"
    step: int = 0
    cost: ProgramCost = dataclasses.field(default_factory=ProgramCost)
    spent_calls: int = 0
    spent_tokens: int = 0
    spent_usd: float = 0.0
    #: The label prior a calibrated program fitted on this evaluation (``None`` otherwise).
    label_prior: dict[str, float] | None = None
    #: When candidates race (see :mod:`search.racing`): validation rows scored, the last rung
    #: reached, and whether the race stopped it before the whole split. ``None`` otherwise.
    rows: int | None = None
    rung: int | None = None
    eliminated: bool = False
    #: The earlier candidate that sent the same requests, whose results this one reuses.
    same_as: int | None = None

    def score(self, name: str) -> float:
        return self.scores[name].value

    def summary(self) -> dict[str, Any]:
        """A JSON-ready row for traces (the program itself is left out)."""
        row: dict[str, Any] = {
            "id": self.id,
            "parent": self.parent,
            "step": self.step,
            "operator": self.operator,
            "description": self.description,
            "hash": self.hash,
            "scores": {
                name: {"value": s.value, "ci_low": s.ci_low, "ci_high": s.ci_high, "n": s.n}
                for name, s in self.scores.items()
            },
            "cost_per_input": self.cost.to_dict(),
            "spent": {
                "calls": self.spent_calls,
                "tokens": self.spent_tokens,
                "usd": self.spent_usd,
            },
        }
        if self.label_prior is not None:
            row["label_prior"] = dict(self.label_prior)
        if self.rows is not None:
            row["race"] = {"rows": self.rows, "rung": self.rung, "eliminated": self.eliminated}
        if self.same_as is not None:
            row["same_as"] = self.same_as
        return row


def fitness(candidate: Candidate, objectives: Sequence[Objective]) -> tuple[float, ...]:
    """A key to sort by, best first when sorted descending: the objectives in order, with
    minimized ones negated, then the candidate's age (older wins ties, for determinism)."""
    values = [
        candidate.score(o.name) if o.direction == "maximize" else -candidate.score(o.name)
        for o in objectives
    ]
    return (*values, -candidate.id)


def unattributed(usage: Usage, candidates: Sequence[Candidate]) -> tuple[int, int, float]:
    """``(calls, tokens, usd)`` in ``usage`` that no candidate was charged with yet.

    >>> c = Candidate(0, None, "h", {}, spent_calls=3, spent_tokens=30)
    >>> unattributed(Usage(calls=5, prompt_tokens=50), [c])
    (2, 20, 0.0)
    """
    calls = usage.calls - sum(c.spent_calls for c in candidates)
    tokens = usage.total_tokens - sum(c.spent_tokens for c in candidates)
    usd = max(0.0, round(usage.usd - math.fsum(c.spent_usd for c in candidates), 12))
    return calls, tokens, usd
