"""benchmarks.harness.cli_speed: the command line timed from outside, split by what the server
saw."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.harness.cli_speed import main, measure, write_workload
from benchmarks.harness.synthetic_server import MODEL, SyntheticServer


def test_a_run_is_split_into_start_up_calls_and_finish(tmp_path: Path) -> None:
    program, data = write_workload(tmp_path, 40)
    with SyntheticServer(0.01) as server:
        command = ["run", str(program), "--data", str(data), "--out", str(tmp_path / "out")]
        command += ["--model", f"openai:{MODEL}", "--base-url", server.base_url]
        speed = measure(server, command, "run 40", concurrency=8)
    assert speed.calls == 40  # one call per row, as the server counted them
    assert speed.startup_s > 0 and speed.calls_s > 0 and speed.finish_s >= 0
    assert speed.wall_s == pytest.approx(speed.startup_s + speed.calls_s + speed.finish_s)
    assert speed.ideal_s == pytest.approx(40 * 0.01 / 8)
    assert speed.outside >= speed.during > 0
    assert (tmp_path / "out" / "predictions.jsonl").read_text().count("\n") == 40


def test_the_benchmark_prints_both_commands(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--candidates", "3", "--optimize-rows", "40", "--rows", "30", "--latency", "0.005"]
    assert main([*args, "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "optimize 3" in out and "run 30" in out and "outside" in out
