"""Candidates: evaluated programs with their lineage, scores and cost."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from sammo_core.components import Output
from sammo_core.objectives import Objective, Score

__all__ = ["Candidate", "fitness"]


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One evaluated program.

    ``scores`` are validation scores by objective name. ``calls`` and ``tokens`` are what its
    evaluation (and the proposal that made it) spent; cache hits cost nothing.
    """

    id: int
    program: Output
    hash: str
    scores: Mapping[str, Score]
    parent: int | None = None
    operator: str = "start"
    description: str = "the starting program"
    step: int = 0
    calls: int = 0
    tokens: int = 0

    def score(self, name: str) -> float:
        return self.scores[name].value

    def summary(self) -> dict[str, Any]:
        """A JSON-ready row for traces (the program itself is left out)."""
        return {
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
            "calls": self.calls,
            "tokens": self.tokens,
        }


def fitness(candidate: Candidate, objectives: Sequence[Objective]) -> tuple[float, ...]:
    """A key to sort by, best first when sorted descending: the objectives in order, with
    minimized ones negated, then the candidate's age (older wins ties, for determinism)."""
    values = [
        candidate.score(o.name) if o.direction == "maximize" else -candidate.score(o.name)
        for o in objectives
    ]
    return (*values, -candidate.id)
