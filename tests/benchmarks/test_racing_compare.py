"""benchmarks.harness.racing_compare: the landscape comparison and the comparison of two runs'
traces."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import pytest

from benchmarks.harness import racing_compare
from sammo_core.testing.landscape import landscape_model
from sammo_core.testing.synthetic import items
from search import BeamSearch, SearchBudget
from search.racing import Racing


def test_a_short_comparison_prints_every_mode(capsys: pytest.CaptureFixture[str]) -> None:
    assert racing_compare.main(["--seeds", "0,1", "--calls", "400", "--val-rows", "24"]) == 0
    out = capsys.readouterr().out
    for mode in ("off", "paired", "halving"):
        assert f"│ {mode}" in out
    assert "2 seeds" in out and "budget 400 calls" in out


def test_traces_are_compared_by_the_rows_each_run_scored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(mode: str, out: Path) -> None:
        search = BeamSearch(
            racing_compare.operators(),
            width=3,
            depth=6,
            budget=SearchBudget(calls=600),
            racing=Racing(mode),  # type: ignore[arg-type]
        )
        asyncio.run(
            search.run(
                racing_compare.start_program(),
                val=items(24),
                runner=landscape_model(),
                out_dir=out,
            )
        )

    run("off", tmp_path / "off")
    run("halving", tmp_path / "raced")
    off = racing_compare.trace_curve(tmp_path / "off" / "trace.jsonl", "accuracy")
    lines = (tmp_path / "off" / "trace.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    # Every candidate scored in full costs its 24 rows; one that reused another's requests, 0.
    steps = [0 if row.get("same_as") is not None else 24 for row in rows]
    assert [cost for cost, _ in off] == list(itertools.accumulate(steps))
    found = racing_compare.compare_traces(tmp_path / "off", tmp_path / "raced", "accuracy")
    assert found["off_best"] == max(v for _, v in off) and found["off_cost"] == off[-1][0]
    raced = racing_compare.trace_curve(tmp_path / "raced" / "trace.jsonl", "accuracy")
    assert found["raced_cost"] == raced[-1][0] <= 600
    assert racing_compare.main(["--traces", str(tmp_path / "off"), str(tmp_path / "raced")]) == 0
    assert "off_best" in capsys.readouterr().out
