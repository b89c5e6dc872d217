"""The whole pipeline offline on the embedded SmolLM2-135M model (slow: run with -m slow)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from sammo_core.cli import main

EXAMPLES = Path(__file__).parents[2] / "sammo_core" / "examples"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason='needs the embedded runner: pip install -e ".[local]"',
    ),
]


def test_optimize_export_run_on_the_embedded_model(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text("".join((EXAMPLES / "yesno.jsonl").read_text().splitlines(True)[:12]))
    run_dir = tmp_path / "run"
    assert (
        main(
            [
                "optimize",
                str(EXAMPLES / "yesno.py"),
                "--data",
                str(data),
                "--model",
                "local",
                "--strategy",
                "beam",
                "--budget",
                "3",
                "--width",
                "1",
                "--depth",
                "1",
                "--operators",
                "structure,format",
                "--seed",
                "0",
                "--out",
                str(run_dir),
            ]
        )
        == 0
    )
    result = json.loads((run_dir / "result.json").read_text())
    assert result["candidates"] == 3
    assert result["usage"]["calls"] == 3 * 3  # three candidates on a 3-row validation split
    assert 0.0 <= result["best"]["scores"]["label_accuracy"]["value"] <= 1.0

    assert main(["export", str(run_dir), "--format", "json"]) == 0
    out = tmp_path / "rerun"
    assert (
        main(
            [
                "run",
                str(run_dir / "export" / "program.json"),
                "--data",
                str(data),
                "--model",
                "local",
                "--limit",
                "4",
                "--out",
                str(out),
                "--objective",
                "label_accuracy:yes,no",
            ]
        )
        == 0
    )
    rerun = json.loads((out / "results.json").read_text())
    assert rerun["rows"] == 4 and rerun["usage"]["calls"] == 4
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert all(r["raw_output"] for r in rows), "the model answered every row"
