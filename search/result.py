"""What a search returns: start vs best (and the Pareto front), test scores for
those only, the best against the start row by row on test (``test_comparison``), the trace,
per-operator win rates and what was spent.

Two kinds of cost stay apart in ``result.json``: each candidate's ``cost_per_input`` (what its
program costs per validation input, cache or not; objectives and fronts use it) and what the
run spent: ``spent`` per candidate, ``usage`` for the search (task and proposer calls, within
the budget), ``test_usage`` for the final test-split report (outside the search budget) and
``total_usage``, their sum: every call the run made.

A :class:`SearchResult` is a plain record the search fills in; the test report and the files
(``result.json``, the programs) are made by :mod:`search.reporting`, which the search calls.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from sammo_core.objectives import Objective, Score
from sammo_core.runners.accounting import Usage
from sammo_core.stats import PairedComparison, compare_paired
from search.candidate import Candidate, unattributed
from search.pareto import pick

__all__ = ["OperatorStats", "SearchResult"]


@dataclasses.dataclass(frozen=True)
class OperatorStats:
    """How one operator fared: children evaluated, children better than their parent."""

    operator: str
    tries: int
    wins: int

    @property
    def win_rate(self) -> float:
        return self.wins / self.tries if self.tries else 0.0


def operator_stats(candidates: Sequence[Candidate], objective: Objective) -> list[OperatorStats]:
    """Per-operator tries and wins (a win: the child beats its parent on ``objective``)."""
    sign = 1 if objective.direction == "maximize" else -1
    tally: dict[str, list[int]] = {}
    for c in candidates:
        if c.parent is None:
            continue
        parent = candidates[c.parent]
        t = tally.setdefault(c.operator, [0, 0])
        t[0] += 1
        better = sign * (c.score(objective.name) - parent.score(objective.name)) > 0
        t[1] += int(better and not c.eliminated)  # racing stopped it: not a win
    return [OperatorStats(op, tries, wins) for op, (tries, wins) in sorted(tally.items())]


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """The outcome of a search."""

    objectives: list[Objective]
    candidates: list[Candidate]
    start: Candidate
    best: Candidate
    front: list[Candidate]
    test_scores: Mapping[int, Mapping[str, Score]]
    usage: Usage
    test_usage: Usage
    stopped: str
    steps: int
    seconds: float
    strategy: str
    params: Mapping[str, Any]
    #: Whether the test report is the one a finished run made before (a resume of a finished
    #: run makes no call).
    report_reused: bool = False
    #: With a panel of models (:mod:`search.panel`): what each model's calls spent in this
    #: process, in the search (``usage`` holds their total).
    usage_by_model: Mapping[str, Usage] = dataclasses.field(default_factory=dict)

    @property
    def total_usage(self) -> Usage:
        """Everything the run spent: the search (``usage``) plus the final test report
        (``test_usage``, which is outside the search budget)."""
        return self.usage + self.test_usage

    @property
    def unattributed(self) -> dict[str, float]:
        """Search spending no candidate carries: proposals made after the last candidate that
        gave no new program, or an evaluation the budget cut short. With the candidates'
        ``spent_calls`` it sums to ``usage.calls``."""
        calls, tokens, usd = unattributed(self.usage, self.candidates)
        return {"calls": calls, "tokens": tokens, "usd": usd}

    @property
    def operators(self) -> list[OperatorStats]:
        return operator_stats(self.candidates, self.objectives[0])

    @property
    def test_comparison(self) -> PairedComparison | None:
        """The best program against the start on the same test rows, on the primary objective:
        the paired difference best - start with its interval, the rows it gets better and
        worse, and for an accuracy the exact McNemar p-value (:func:`compare_paired`).
        ``None`` without a test split or per-row scores (a cost total such as ``calls``).

        Two separate test intervals overlap on 50-100 rows even when the best wins on nearly
        every row where the two differ; this says whether it does.
        """
        primary = self.objectives[0]
        best = self.test_scores.get(self.best.id, {}).get(primary.name)
        start = self.test_scores.get(self.start.id, {}).get(primary.name)
        if best is None or start is None or best.per_item is None or start.per_item is None:
            return None
        return compare_paired(best.per_item, start.per_item, direction=primary.direction)

    def pick(self, limits: Mapping[str, float] | None = None) -> Candidate:
        """The best candidate within ``limits``, e.g. ``{"mean_prompt_tokens": 200}``."""
        return pick([c for c in self.candidates if not c.eliminated], self.objectives, limits)

    def lineage(self, candidate: Candidate | None = None) -> list[Candidate]:
        """From the start program to ``candidate`` (default: the best), one step at a time."""
        chain = [candidate or self.best]
        while chain[-1].parent is not None:
            chain.append(self.candidates[chain[-1].parent])
        return chain[::-1]

    def to_dict(self) -> dict[str, Any]:
        def scores(c: Candidate) -> dict[str, Any]:
            row = c.summary()
            test = self.test_scores.get(c.id)
            row["test_scores"] = (
                None
                if test is None
                else {k: s.to_dict() | {"per_item": None} for k, s in test.items()}
            )
            return row

        comparison = self.test_comparison
        return {
            "strategy": self.strategy,
            "params": dict(self.params),
            "objectives": [{"name": o.name, "direction": o.direction} for o in self.objectives],
            "start": scores(self.start),
            "best": scores(self.best),
            "front": [scores(c) for c in self.front],
            # best - start on the same test rows (primary objective), row by row.
            "test_comparison": None
            if comparison is None
            else {
                "objective": self.objectives[0].name,
                "best": self.best.id,
                "start": self.start.id,
                **comparison.to_dict(),
            },
            "lineage": [c.summary() for c in self.lineage()],
            "operators": [dataclasses.asdict(s) | {"win_rate": s.win_rate} for s in self.operators],
            "candidates": len(self.candidates),
            "usage": self.usage.to_dict(),
            "unattributed": self.unattributed,
            "test_usage": self.test_usage.to_dict(),
            "total_usage": self.total_usage.to_dict(),
            **(
                {"usage_by_model": {m: u.to_dict() for m, u in self.usage_by_model.items()}}
                if self.usage_by_model
                else {}
            ),
            "stopped": self.stopped,
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
