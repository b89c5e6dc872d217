"""The end of a search: the test report of the programs it reports (the start, the best and
the Pareto front), made now or taken from a finished run's checkpoint, and the files of a
result (``result.json``, ``best_program.json``, ``programs/ID.json``).

:meth:`search.base.Search.run` calls these after its last step; the result itself is a plain
record (:class:`~search.result.SearchResult`) that knows nothing of runners or files.

>>> from sammo_core.objectives import Score
>>> a, b = Candidate(0, None, "a", {}), Candidate(1, None, "b", {})
>>> [c.id for c in reported([a, b, a])]
[0, 1]
>>> earlier = {"test": "h", "scores": {"0": {"acc": Score("acc", 0.5).to_dict()}},
...            "usage": {"calls": 3}}
>>> TestReport.reuse(earlier, "h", [a]).usage.calls
3
>>> TestReport.reuse(earlier, "other split", [a]) is None
True
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from sammo_core.data import DataTable
from sammo_core.objectives import Objective, Score
from sammo_core.run_files import write_file
from sammo_core.runners.accounting import Ledger, Usage
from sammo_core.runners.base import Runner
from sammo_core.serialization import dumps
from search.candidate import Candidate
from search.evaluator import Evaluator
from search.panel import Panel, counted
from search.result import SearchResult

__all__ = ["TestReport", "kept_report", "reported", "save_result"]


def reported(candidates: Sequence[Candidate]) -> list[Candidate]:
    """``candidates`` without repeats, in order (the start may be the best, or on the front)."""
    seen: dict[int, Candidate] = {}
    for c in candidates:
        seen.setdefault(c.id, c)
    return list(seen.values())


@dataclasses.dataclass(frozen=True)
class TestReport:
    """The test scores of the reported candidates, what making them spent, and whether they are
    those of an earlier report of the same run (a resume of a finished run makes no call)."""

    __test__ = False  # not a pytest test class

    scores: Mapping[int, Mapping[str, Score]]
    usage: Usage
    reused: bool = False

    @classmethod
    async def make(
        cls,
        candidates: Sequence[Candidate],
        *,
        test: DataTable | None,
        runner: Runner | Panel,
        objectives: Sequence[Objective],
        max_concurrency: int,
        max_tokens_per_input: int | None,
        earlier: Mapping[str, Any] | None = None,
    ) -> TestReport:
        """Score ``candidates`` on ``test`` (none without a test split), or take the scores of
        ``earlier`` (what :func:`kept_report` kept for the same run and split)."""
        if test is not None:
            again = cls.reuse(earlier, test.content_hash(), candidates)
            if again is not None:
                return again
        # Outside the search budget, but counted: test_usage, and total_usage with the search.
        ledger = Ledger()
        reporter = counted(runner, ledger)
        scores: dict[int, Mapping[str, Score]] = {}
        if test is not None:
            evaluator = Evaluator(
                test,
                reporter,
                list(objectives),
                max_concurrency,
                max_tokens_per_input=max_tokens_per_input,  # as on validation
            )
            # At once, under the one concurrency limit: the start's calls and the best's
            # overlap instead of waiting for each other.
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(evaluator.evaluate(c.program)) for c in candidates]
            except BaseExceptionGroup as failure:
                raise failure.exceptions[0] from None
            for cand, task in zip(candidates, tasks, strict=True):
                scores[cand.id] = task.result().scores
        return cls(scores, ledger.usage)

    @classmethod
    def reuse(
        cls, earlier: Mapping[str, Any] | None, test_hash: str, candidates: Sequence[Candidate]
    ) -> TestReport | None:
        """The scores and usage of an earlier report, if it covers the split of ``test_hash``
        and every one of ``candidates`` (else ``None``: the report is made again)."""
        if earlier is None or earlier.get("test") != test_hash:
            return None
        try:
            scores: dict[int, Mapping[str, Score]] = {
                int(i): {k: _score(v) for k, v in by_name.items()}
                for i, by_name in earlier["scores"].items()
            }
            usage = Usage(**earlier["usage"])
        except (KeyError, TypeError, ValueError, AttributeError):
            return None  # an unreadable report is made again rather than trusted
        if any(c.id not in scores for c in candidates):
            return None
        return cls({c.id: scores[c.id] for c in candidates}, usage, reused=True)


def save_result(result: SearchResult, out: Path) -> None:
    """Write ``result.json`` and the programs of the start, the best and the front into
    ``out``."""
    for cand in reported([result.start, result.best, *result.front]):
        write_file(out, f"programs/{cand.id}.json", dumps(cand.program))
    write_file(out, "best_program.json", dumps(result.best.program))
    write_file(out, "result.json", orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2))


def kept_report(result: SearchResult, test: DataTable | None) -> dict[str, Any] | None:
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
