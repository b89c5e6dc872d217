"""``python -m benchmarks.harness.soft_compare`` end to end at its smallest, on a tiny random
Gemma 3 saved as a model folder (no download): four programs per task on the same test rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_one_task_gives_four_programs_on_the_same_test_rows(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks.harness.soft_compare import main
    from sammo_core.testing.tiny_hf import tiny_hf_folder

    model = tiny_hf_folder(tmp_path / "tiny")
    out = tmp_path / "out"
    code = main([
        "--tasks", "implicatures", "--model", str(model), "--data-dir", str(data_dir),
        "--train-rows", "6", "--val-rows", "3", "--test-rows", "5", "--candidates", "2",
        "--steps", "2", "--eval-every", "1", "--soft-tokens", "2", "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    rows = json.loads((out / "soft_compare.json").read_text())["rows"]
    assert [r["program"] for r in rows] == ["zero-shot", "hard", "soft", "hybrid"]
    assert {r["test"]["n"] for r in rows} == {5}
    assert [r["steps"] for r in rows][2:] == [2, 2]
    table = (out / "soft_compare.md").read_text()
    assert "| implicatures | hybrid |" in table
    for run in ("hard", "soft", "hybrid"):
        assert (out / "implicatures" / run / "result.json").is_file()
    assert "| implicatures | soft |" in capsys.readouterr().out


def test_an_unknown_task_is_one_error_line(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks.harness.soft_compare import main
    from sammo_core.testing.tiny_hf import tiny_hf_folder

    model = tiny_hf_folder(tmp_path / "tiny")
    args = ["--tasks", "no_such_task", "--model", str(model), "--out", str(tmp_path)]
    assert main([*args, "--data-dir", str(data_dir)]) == 2
    assert "no_such_task" in capsys.readouterr().err
