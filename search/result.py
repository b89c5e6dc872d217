"""What a search returns and writes: start vs best (and the Pareto front), test scores for
those only, the best against the start row by row on test (``test_comparison``), the trace,
per-operator win rates and what was spent.

Two kinds of cost stay apart in ``result.json``: each candidate's ``cost_per_input`` (what its
program costs per validation input, cache or not; objectives and fronts use it) and what the
run spent: ``spent`` per candidate, ``usage`` for the search (task and proposer calls, within
the budget), ``test_usage`` for the final test-split report (outside the search budget) and
``total_usage``, their sum: every call the run made.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from sammo_core.data import DataTable
from sammo_core.objectives import Objective, Score
from sammo_core.run_files import write_file
from sammo_core.runners.accounting import AccountingRunner, Usage
from sammo_core.runners.base import Runner
from sammo_core.serialization import dumps
from sammo_core.stats import PairedComparison, compare_paired
from search.candidate import Candidate, unattributed
from search.evaluator import Evaluator
from search.pareto import pareto_front, pick

if TYPE_CHECKING:
    from search.base import SearchRun

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

    @classmethod
    async def build(
        cls,
        run: SearchRun,
        *,
        test: DataTable | None,
        runner: Runner,
        seconds: float,
        out: Path | None,
        earlier: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """The result of ``run``, its test report made now, or taken from ``earlier`` (what
        :meth:`test_report` returned for the same run and test split)."""
        objectives = run.objectives
        start, best = run.candidates[0], run.best()
        contenders = run.contenders()  # racing may have stopped some before the whole split
        front = pareto_front(contenders, objectives) if len(objectives) > 1 else [best]
        test_scores: dict[int, Mapping[str, Score]] = {}
        # Outside the search budget, but counted: test_usage, and total_usage with the search.
        reporter = AccountingRunner(runner)
        reused = _earlier_report(earlier, test, _unique([start, best, *front]))
        if reused is not None:
            test_scores, test_usage = reused
        elif test is not None:
            evaluator = Evaluator(
                test,
                reporter,
                objectives,
                run.search.max_concurrency,
                max_tokens_per_input=run.evaluator.max_tokens_per_input,  # as on validation
            )
            reported = _unique([start, best, *front])
            # At once, under the one concurrency limit: the start's calls and the best's
            # overlap instead of waiting for each other.
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(evaluator.evaluate(c.program)) for c in reported]
            except BaseExceptionGroup as failure:
                raise failure.exceptions[0] from None
            for cand, task in zip(reported, tasks, strict=True):
                test_scores[cand.id] = task.result().scores
        if reused is None:
            test_usage = reporter.usage
        result = cls(
            objectives=objectives,
            candidates=run.candidates,
            start=start,
            best=best,
            front=front,
            test_scores=test_scores,
            usage=run.ledger.usage,
            test_usage=test_usage,
            stopped=run.stopped or "done",
            steps=run.step,
            seconds=seconds,
            strategy=type(run.search).__name__,
            params=run.search.settings(),
            report_reused=reused is not None,
        )
        if out is not None:
            result.save(out)
        return result

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
            "stopped": self.stopped,
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }

    def save(self, out: Path) -> None:
        """Write ``result.json`` and the programs of the start, the best and the front."""
        for cand in _unique([self.start, self.best, *self.front]):
            write_file(out, f"programs/{cand.id}.json", dumps(cand.program))
        write_file(out, "best_program.json", dumps(self.best.program))
        write_file(out, "result.json", orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2))


def test_report(result: SearchResult, test: DataTable | None) -> dict[str, Any] | None:
    """The test report of ``result`` as the checkpoint keeps it (``None`` without a test
    split): the split's hash, each reported candidate's scores, what the report spent."""
    if test is None:
        return None
    return {
        "test": test.content_hash(),
        "scores": {
            str(i): {k: s.to_dict() for k, s in scores.items()}
            for i, scores in result.test_scores.items()
        },
        "usage": result.test_usage.to_dict(),
    }


def _earlier_report(
    earlier: Mapping[str, Any] | None, test: DataTable | None, reported: Sequence[Candidate]
) -> tuple[dict[int, Mapping[str, Score]], Usage] | None:
    """The scores and usage of an earlier test report, if it covers the same split and every
    candidate to report (else ``None``: the report is made again)."""
    if earlier is None or test is None or earlier.get("test") != test.content_hash():
        return None
    try:
        scores: dict[int, Mapping[str, Score]] = {
            int(i): {k: _score(v) for k, v in by_name.items()}
            for i, by_name in earlier["scores"].items()
        }
        usage = Usage(**earlier["usage"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # an unreadable report is made again rather than trusted
    if any(c.id not in scores for c in reported):
        return None
    return {c.id: scores[c.id] for c in reported}, usage


def _score(d: Mapping[str, Any]) -> Score:
    per_item = d["per_item"]
    return Score(
        str(d["name"]),
        float(d["value"]),
        d["ci_low"],
        d["ci_high"],
        None if per_item is None else tuple(float(v) for v in per_item),
        int(d["n"]),
    )


def _unique(cands: Sequence[Candidate]) -> list[Candidate]:
    seen: dict[int, Candidate] = {}
    for c in cands:
        seen.setdefault(c.id, c)
    return list(seen.values())
