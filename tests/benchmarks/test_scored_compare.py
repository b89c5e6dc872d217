"""The scored comparison's pieces on a scripted scoring model (the lead runs it on Gemma)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from benchmarks.datasets import load_sammo_instruction_tuning
from benchmarks.harness.scored_compare import format_table, run_task, spearman, start_program
from sammo_core import ScriptedRunner
from sammo_core.runners import LLMRequest
from sammo_core.stats import format_p, mcnemar_exact


def test_spearman_ranks_ties_and_order() -> None:
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 2], [5, 5, 9]) == pytest.approx(1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) == 0.0


def test_a_run_reports_zero_shot_start_and_winner_with_paired_intervals(
    data_dir: Path, tmp_path: Path
) -> None:
    """A scripted model that knows the gold label only when the prompt shows one or two
    examples (more distract it): the search finds fewer examples, and the winner's paired
    interval over the start excludes 0."""
    splits = load_sammo_instruction_tuning(data_dir, "implicatures")
    gold = {row.input: row.output for t in (splits.val, splits.test) for row in t}

    def scores(request: LLMRequest) -> dict[str, float]:
        text = request.prompt_text
        # The last known question in the prompt ("" for calibration's content-free inputs).
        question = max([(text.rfind(q), q) for q in gold if q in text], default=(0, ""))[1]
        words = dict(zip(("no", "yes"), request.labels, strict=True))  # a verbalizer's too
        if 1 <= text.count("Example ") <= 2 and question:
            p_right, right = 0.8, words[gold[question]]
        else:  # leans to "yes", more or less by question: it cannot tell the labels apart
            p_right, right = 0.55 + 0.4 * (len(question) % 2), words["yes"]
        return {w: math.log(p_right if w == right else 1 - p_right) for w in request.labels}

    runner = ScriptedRunner(label_scores=scores)
    report = asyncio.run(
        run_task(
            "implicatures",
            data_dir=str(data_dir),
            runner=runner,
            seed=0,
            candidates=12,
            select="label_loglik",
            correlation=False,
            out=tmp_path,
        )
    )
    assert report.scores["start"]["accuracy"] == pytest.approx(report.majority_rate)
    assert report.scores["winner"]["accuracy"] == 1.0
    # Row by row on the same test rows: the winner fixes every row the start got wrong.
    versus_start = report.winner_minus_start
    assert versus_start.ci_low > 0 and versus_start.diff == pytest.approx(1 - report.majority_rate)
    fixed = round(report.n_test * (1 - report.majority_rate))
    assert (versus_start.wins, versus_start.losses) == (fixed, 0)
    assert versus_start.p_value == pytest.approx(mcnemar_exact(fixed, 0))
    assert report.winner_minus_majority.ci_low > 0
    assert report.winner_minus_majority.p_value is not None
    assert report.loglik_winner_minus_start.p_value is None  # graded: no McNemar
    table = format_table([report])
    assert "| implicatures | 0 | 0.52 (yes) |" in table
    assert f"({fixed}/0, p={format_p(mcnemar_exact(fixed, 0))})" in table
    assert report.to_dict()["winner_minus_start"]["wins"] == fixed
    program = start_program(splits.instructions, splits.train, ["no", "yes"])
    assert program.child.prompt.children[1].selection == "balanced"
