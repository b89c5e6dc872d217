"""The score-against-budget plot of a run of many tasks and seeds draws (warnings are errors
here): one colour and one legend entry per task, its seeds sharing them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.report import plot_progress

pytest.importorskip("matplotlib")


def test_seven_tasks_by_ten_seeds_plot_without_collapsing(tmp_path: Path) -> None:
    seeds = []
    for seed in range(10):
        tasks = {}
        for t in range(7):
            run_dir = f"task-{t}/seed-{seed}"
            (tmp_path / run_dir).mkdir(parents=True)
            rows = [
                {"scores": {"accuracy": {"value": 0.1 * k + 0.01 * t}}, "spent": {"calls": 10}}
                for k in range(6)
            ]
            (tmp_path / run_dir / "trace.jsonl").write_text(
                "".join(json.dumps(r) + "\n" for r in rows)
            )
            tasks[f"task-{t}"] = {"run_dir": run_dir, "objective": "accuracy"}
        seeds.append({"seed": seed, "tasks": tasks, "errors": {}})
    results = {"suite": "s", "model": "m", "seeds": seeds, "aggregate": {}}
    image = plot_progress(tmp_path, results)
    assert image is not None and image.read_bytes()[:4] == b"\x89PNG"
