"""What a run of a program produced, complete or not (:class:`RunReport`): its scores, reply
counts, how the answers were read, the summary table it prints (:func:`print_summary`) and the
files it writes (``results.json``, ``predictions.jsonl``, ``program.json``).

Shared by ``sammo-core run`` (:mod:`sammo_core.cli_run`) and ``run --compare``
(:mod:`sammo_core.cli_compare`), so that neither imports the other for it.
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from sammo_core.console import table_console
from sammo_core.run_files import write_file

if TYPE_CHECKING:
    from rich.console import Console

    from sammo_core.objectives import Score
    from sammo_core.runners.accounting import Usage
    from sammo_core.runners.retry import RetryStats

__all__ = ["RunReport", "describe_scoring", "majority_rate", "print_summary", "write_jsonl"]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Write records as JSON lines, atomically (a crash leaves the old file or the new one)."""
    lines = b"".join(orjson.dumps(record, default=str) + b"\n" for record in records)
    write_file(path.parent, path.name, lines)  # never through a link planted at ``path``


class RunReport:
    """What a run produced, complete or not: its scores, reply counts and output files."""

    def __init__(
        self,
        *,
        args: argparse.Namespace,
        program: Any,
        program_hash: str,
        data: Any,
        objective: Any,
        rows: list[Any],
        stopped: str | None,
        label_prior: dict[str, float] | None = None,
    ) -> None:
        from sammo_core.objectives import LabelLogLikelihood, evaluate, reply_counts
        from sammo_core.results import ResultTable

        self.args, self.program, self.program_hash, self.data = args, program, program_hash, data
        self.results = ResultTable.from_rows(rows, label_prior)
        self.stopped = stopped
        objectives = [objective]
        if self.results.scored and objective.name != "label_loglik":
            objectives.append(LabelLogLikelihood())  # the smooth score beside the chosen one
        self.scores: dict[str, Score] = (
            evaluate(self.results, objectives) if len(self.results) else {}
        )
        self.replies = reply_counts(self.results, [objective])
        self.scoring = describe_scoring(program, self.results)
        self.majority = majority_rate(self.results, objective)

    def summarize(
        self, console: Console, usage: Usage, elapsed: float, *, requests: RetryStats | None
    ) -> None:
        title = f"{len(self.results)} rows"
        if self.stopped is not None:
            title = f"{len(self.results)} of {len(self.data)} rows (partial: {self.stopped})"
        print_summary(
            console,
            scores=self.scores,
            usage=usage,
            elapsed=elapsed,
            title=title,
            replies=self.replies,
            requests=requests,
            facts=self.facts(),
            cut_off=self.results.cut_off,
            tokens_estimated=self.results.tokens_estimated,
        )

    def facts(self) -> dict[str, str]:
        """How the answers were read, and what a constant answer would score."""
        facts = {"scoring": self.scoring}
        if self.majority is not None:
            label, rate = self.majority
            facts["majority-label rate"] = f"{rate:.3f} (always '{label}')"
        prior = self.results.label_prior
        if prior:
            facts["calibration prior"] = ", ".join(f"{k} {v:.3f}" for k, v in prior.items())
        return facts

    def write(self, usage: Usage, elapsed: float, *, requests: RetryStats | None) -> None:
        from sammo_core import __version__
        from sammo_core.serialization import dumps

        out: Path = self.args.out
        out.mkdir(parents=True, exist_ok=True)
        summary = {
            "program": str(self.args.program),
            "program_hash": self.program_hash,
            "data": str(self.args.data),
            "data_hash": self.data.content_hash(),
            "rows": len(self.results),
            "rows_in_data": len(self.data),
            "partial": self.stopped is not None,
            "stopped": self.stopped,
            "model": self.args.model,
            "scores": {name: s.to_dict() for name, s in self.scores.items()},
            "scoring": self.scoring,
            "majority_rate": None if self.majority is None else self.majority[1],
            "majority_label": None if self.majority is None else self.majority[0],
            "label_prior": self.results.label_prior,
            "replies": self.replies,
            # Replies the model cut off at max_tokens: their answers may be incomplete.
            "cut_off": self.results.cut_off,
            # What the program costs per input (cache or not), apart from what this run spent;
            # the rows whose token counts are estimates (the server reported none) are counted.
            "cost_per_input": self.results.cost_per_input().to_dict(),
            "tokens_estimated": self.results.tokens_estimated,
            "usage": usage.to_dict(),
            "requests": None if requests is None else requests.to_dict(),
            "seconds": round(elapsed, 3),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "sammo_core_version": __version__,
        }
        write_file(out, "program.json", dumps(self.program))
        write_jsonl(out / "predictions.jsonl", self.results.to_records())
        write_file(
            out, "results.json", orjson.dumps(summary, option=orjson.OPT_INDENT_2, default=str)
        )


def describe_scoring(program: Any, results: Any) -> str:
    """How a run's answers were read: scored labels (with calibration or not), or generated.

    >>> from sammo_core import GenerateText, InputData, MetaPrompt, Output
    >>> from sammo_core.results import ResultTable
    >>> describe_scoring(Output(GenerateText(MetaPrompt([InputData()]))), ResultTable(()))
    'generated text'
    """
    labels = [str(x) for x in program.child.labels]
    if not labels:
        return "generated text"
    if not results.scored:
        return f"generated text (labels {labels} listed; the model did not score them)"
    how = f"label likelihood (rank classification over {labels})"
    if program.calibration != "none":
        how += f", calibrated ({program.calibration})"
    return how


def majority_rate(results: Any, objective: Any) -> tuple[str, float] | None:
    """The most frequent gold label of the rows and the label accuracy of always answering it
    (for a label objective; else ``None``): the bar a classifier must clear.

    >>> from sammo_core.objectives import LabelAccuracy
    >>> from sammo_core.results import ResultRow, ResultTable
    >>> rows = [ResultRow(i, "q", g, "p", "", None) for i, g in enumerate(["no", "yes", "no"])]
    >>> majority_rate(ResultTable(tuple(rows)), LabelAccuracy(("yes", "no")))
    ('no', 0.6666666666666666)
    """
    from sammo_core.objectives import LabelAccuracy

    if not isinstance(objective, LabelAccuracy) or not len(results):
        return None
    return objective.majority([r.output for r in results])


_REPLY_ROWS = {
    "failed": "failed rows (scored wrong)",
    "empty": "empty replies",
    "unparsable": "unparsable replies",
    "off_label": "off-label replies",
}


def print_summary(
    console: Console,
    *,
    scores: dict[str, Score],
    usage: Usage,
    elapsed: float,
    title: str,
    replies: dict[str, int | None],
    requests: RetryStats | None = None,
    facts: dict[str, str] | None = None,
    cut_off: int = 0,
    tokens_estimated: int = 0,
) -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for score in scores.values():
        interval = f" [{score.ci_low:.3f}, {score.ci_high:.3f}]" if score.ci_low is not None else ""
        table.add_row(score.name, f"{score.value:.3f}{interval}")
    for name, value in (facts or {}).items():
        table.add_row(name, value)
    for kind, count in replies.items():
        if count is not None:  # off_label only with a label objective
            table.add_row(_REPLY_ROWS[kind], f"{count:,}")
    if cut_off:  # answers that may be incomplete: raise max_tokens
        table.add_row("cut-off replies (max_tokens)", f"{cut_off:,}")
    if tokens_estimated:  # costs and token budgets rest on an estimate for these rows
        table.add_row("rows with estimated tokens", f"{tokens_estimated:,}")
    table.add_row("calls", f"{usage.calls:,}")
    if requests is not None and requests.attempts:
        # What the calls cost on the wire: every attempt, the retries by cause, the waits.
        causes = ", ".join(f"{c} {n}" for c, n in requests.retries_by_cause.items() if n)
        table.add_row("requests sent", f"{requests.attempts:,}")
        table.add_row("retries", f"{requests.retries:,}" + (f" ({causes})" if causes else ""))
        table.add_row("retry wait", f"{requests.wait_seconds:.1f} s")
    table.add_row("cache hits", f"{usage.cache_hits:,}")
    table.add_row("prompt tokens", f"{usage.prompt_tokens:,}")
    table.add_row("completion tokens", f"{usage.completion_tokens:,}")
    if usage.estimated_calls:  # the server's counts were missing or impossible
        table.add_row("calls with estimated tokens", f"{usage.estimated_calls:,}")
    if usage.saved_tokens:
        table.add_row("tokens saved by cache", f"{usage.saved_tokens:,}")
    if usage.usd:
        table.add_row("est. cost", f"${usage.usd:.4f}")
    table.add_row("time", f"{elapsed:.1f} s")
    table_console().print(table)  # the table goes to stdout; progress went to stderr
    del console
