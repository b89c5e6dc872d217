"""optimize -> export -> run from the command line, against a loopback server, as a new user
would; and a run killed with SIGKILL then resumed ends like an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import pytest

from sammo_core import DataTable
from sammo_core.cli import main
from sammo_core.runners import LLMRequest, Message
from sammo_core.stats import mcnemar_exact
from sammo_core.testing.chat_server import ChatServer
from sammo_core.testing.synthetic import answer, items

PROGRAM = """\
from sammo_core.testing.synthetic import start_program

program = start_program()
OBJECTIVE = "accuracy"
"""


def reply(body: Mapping[str, Any]) -> str:
    messages = tuple(Message(m["role"], m["content"]) for m in body["messages"])
    return answer(LLMRequest(messages=messages))


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    program = tmp_path / "program.py"
    program.write_text(PROGRAM)
    data, test = tmp_path / "data.jsonl", tmp_path / "test.jsonl"
    items(60).save(data)
    items(20, start=500).save(test)
    return program, data, test


def optimize_args(program: Path, data: Path, url: str, out: Path, *extra: str) -> list[str]:
    return [
        "optimize",
        str(program),
        "--data",
        str(data),
        "--model",
        "loopback",
        "--base-url",
        url,
        "--strategy",
        "beam",
        "--budget",
        "40",
        "--width",
        "3",
        "--depth",
        "4",
        "--operators",
        "structure,examples",
        "--seed",
        "0",
        "--out",
        str(out),
        "--timeout",
        "5",
        *extra,
    ]


def test_optimize_export_run(
    files: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    program, data, test = files
    run_dir, export_dir = tmp_path / "run", tmp_path / "export"
    with ChatServer(reply=reply) as server:
        assert main(optimize_args(program, data, server.base_url, run_dir)) == 0
        report = capsys.readouterr().out
        result = json.loads((run_dir / "result.json").read_text())
        assert result["start"]["scores"]["accuracy"]["value"] <= 0.6  # about half right
        assert result["best"]["scores"]["accuracy"]["value"] == 1.0
        assert result["best"]["test_scores"]["accuracy"]["value"] == 1.0
        assert "start (#0)" in report and "best (#" in report
        # best - start on the same 15 test rows, row by row: the rows the start got wrong.
        start_test = result["start"]["test_scores"]["accuracy"]["value"]
        comparison = result["test_comparison"]
        fixed = round(15 * (1.0 - start_test))
        assert (comparison["objective"], comparison["n"]) == ("accuracy", 15)
        assert (comparison["wins"], comparison["losses"]) == (fixed, 0)
        assert comparison["diff"] == pytest.approx(1.0 - start_test)
        assert comparison["p_value"] == pytest.approx(mcnemar_exact(fixed, 0))
        assert 0 < comparison["ci_low"] <= comparison["diff"] <= comparison["ci_high"]
        line = next(x for x in report.splitlines() if "best - start on the same rows" in x)
        assert f"(n=15; {fixed} rows better, 0 worse; McNemar p=" in line

        assert main(["export", str(run_dir), "--format", "json", "--out", str(export_dir)]) == 0
        manifest = json.loads((export_dir / "manifest-json.json").read_text())
        assert manifest["model"] == "loopback"
        assert manifest["scores"]["accuracy"]["value"] == 1.0

        out = tmp_path / "rerun"
        assert (
            main(
                [
                    "run",
                    str(export_dir / "program.json"),
                    "--data",
                    str(test),
                    "--model",
                    "loopback",
                    "--base-url",
                    server.base_url,
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        rerun = json.loads((out / "results.json").read_text())
        assert rerun["scores"]["accuracy"]["value"] == 1.0

    for fmt, name in (
        ("markdown", "prompt.md"),
        ("jinja", "prompt.jinja"),
        ("messages", "messages.json"),
    ):
        target = tmp_path / fmt
        assert main(["export", str(run_dir), "--format", fmt, "--out", str(target)]) == 0
        assert (target / name).is_file() and (target / f"manifest-{fmt}.json").is_file()
        assert (target / "program.json").is_file()  # the runnable program comes with every format
    template = (tmp_path / "jinja" / "prompt.jinja").read_text()
    rendered = jinja2.Template(template).render(input="item 7")
    assert "Input: item 7" in rendered and "Always answer maybe." not in rendered


def test_export_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path)]) == 1
    assert "no result.json" in capsys.readouterr().err


def _cli(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "sammo_core.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_sigkill_then_resume_equals_an_uninterrupted_run(
    files: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    program, data, _ = files
    with ChatServer(reply=reply, latency=0.01) as server:
        whole = tmp_path / "whole"
        assert _cli(*optimize_args(program, data, server.base_url, whole)).wait(120) == 0

        killed = tmp_path / "killed"
        proc = _cli(*optimize_args(program, data, server.base_url, killed))
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                checkpoint = killed / "checkpoint.json"
                if checkpoint.is_file() and json.loads(checkpoint.read_text())["step"] >= 1:
                    break
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(30)
        assert proc.returncode == -signal.SIGKILL
        assert not (killed / "result.json").exists(), "the run was killed before finishing"

        resumed = _cli(*optimize_args(program, data, server.base_url, killed, "--resume"))
        assert resumed.wait(120) == 0

    a = json.loads((whole / "result.json").read_text())
    b = json.loads((killed / "result.json").read_text())
    assert b["best"]["hash"] == a["best"]["hash"]
    assert b["best"]["scores"] == a["best"]["scores"]
    assert b["candidates"] == a["candidates"]
    # the killed session's calls stay charged, the work redone since its checkpoint too
    assert b["usage"]["calls"] >= a["usage"]["calls"]
    trace_a = (whole / "trace.jsonl").read_text()
    trace_b = (killed / "trace.jsonl").read_text()
    assert trace_a == trace_b


_ = DataTable


def test_optimize_reports_requests_and_retries_by_cause(
    files: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sammo_core.testing.chat_server import FaultPlan

    program, data, test = files
    # The first two requests fail (a 500, then a 429) and are retried.
    with ChatServer(reply=reply, faults=FaultPlan.scripted(["500", "429"])) as server:
        args = optimize_args(program, data, server.base_url, tmp_path / "run")
        args[args.index("--budget") + 1] = "3"
        assert main([*args, "--test-data", str(test)]) == 0
        served = server.stats().requests
    out = capsys.readouterr().out
    [line] = [x for x in out.splitlines() if x.startswith("task model:")]
    assert f"task model: {served:,} requests for {served - 2:,} calls; 2 retries" in line
    assert "(429: 1, 5xx: 1)" in line


def test_a_logged_search_prints_a_line_per_candidate_and_says_its_default_budget(
    files: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With stderr going to a file (no terminal), each evaluated candidate logs one whole line
    (no wrapping at 80 columns); without --budget the default is used and named."""
    program, data, _ = files
    args = optimize_args(program, data, "", tmp_path / "run")
    at = args.index("--budget")
    del args[at : at + 2]
    with ChatServer(reply=reply) as server:
        args[args.index("--base-url") + 1] = server.base_url
        assert main(args) == 0
    err = capsys.readouterr().err
    assert "budget: 16 candidates (the default; --budget to change it)" in err
    assert "operators that can change this program: " in err
    lines = [line for line in err.splitlines() if line.startswith("step ")]
    trace = (tmp_path / "run" / "trace.jsonl").read_text().splitlines()
    assert len(lines) == len(trace) == 16  # one line per candidate, the start included
    assert all(
        "candidates" in line and "best accuracy" in line and "calls" in line for line in lines
    )


def test_optimize_help_shows_prompt_tuning_options_only_for_that_strategy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["optimize", "--help"])
    plain = " ".join(capsys.readouterr().out.replace("-\n", "-").split())  # unwrapped
    assert "--soft-tokens" not in plain and "--strategy prompt-tuning --help" in plain
    with pytest.raises(SystemExit):
        main(["optimize", "--strategy", "prompt-tuning", "--help"])
    tuning = capsys.readouterr().out
    assert "--soft-tokens" in tuning and "--lr" in tuning


MAKE_PROGRAM = """\
from sammo_core import Examples, GenerateText, InputData, MetaPrompt, Output, Section

def make_program(examples):
    parts = [Section("Task", ["Answer the item."]), InputData()]
    if examples is not None:
        parts.insert(1, Examples(examples, n=2, id="shots"))
    return Output(GenerateText(MetaPrompt(parts)))
"""


def test_make_program_gets_the_training_split_as_its_examples(
    files: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """A program file's make_program(examples) is built from the training split (it was
    always given None), so its Examples node draws from the training rows."""
    from sammo_core import find_one, loads

    _, data, _ = files
    program = tmp_path / "make.py"
    program.write_text(MAKE_PROGRAM)
    run_dir = tmp_path / "run"
    with ChatServer(reply=reply) as server:
        args = optimize_args(program, data, server.base_url, run_dir)
        args[args.index("--budget") + 1] = "2"
        assert main(args) == 0
    start = loads((run_dir / "programs" / "0.json").read_text())
    shots = find_one(start, "#shots").node
    assert len(shots.data) == 30  # the training half of 60 rows (--split 0.5,0.25,0.25)
    train_inputs = set(shots.data.inputs)
    assert train_inputs <= {row.input for row in DataTable.load(data)}


def test_a_calibrated_winner_exports_its_fitted_prior(tmp_path: Path) -> None:
    """optimize --labels --calibrate on a completions server with log-probabilities: the
    winner's prior, fitted on validation, is in result.json, baked into the exported program
    (so running it makes no calibration calls) and in the manifest."""
    from sammo_core import loads

    rows = [{"input": f"item {i}", "output": "yes" if i % 3 else "no"} for i in range(24)]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prompt = tmp_path / "prompt.md"
    prompt.write_text("# Task\n\nAnswer yes or no.\n\n# Item\n\n{{ input }}\n\nAnswer:")
    run_dir, export_dir = tmp_path / "run", tmp_path / "export"
    with ChatServer() as server:  # scores each token -0.5 a character
        args = [
            "optimize", str(prompt), "--data", str(data), "--model", "loopback",
            "--base-url", server.base_url, "--mode", "completion", "--labels", "auto",
            "--calibrate", "--budget", "3", "--operators", "scoring", "--out", str(run_dir),
        ]  # fmt: skip
        assert main(args) == 0
    result = json.loads((run_dir / "result.json").read_text())
    prior = result["best"]["label_prior"]
    assert set(prior) == {"no", "yes"} and sum(prior.values()) == pytest.approx(1.0)
    assert main(["export", str(run_dir), "--format", "json", "--out", str(export_dir)]) == 0
    exported = loads((export_dir / "program.json").read_text())
    assert exported.calibration == "content_free"
    assert list(exported.label_prior) == [prior["no"], prior["yes"]]
    call = json.loads((export_dir / "manifest-json.json").read_text())["call"]
    assert call["labels"] == ["no", "yes"] and call["label_prior"] == prior
    assert call["calibration"] == "content_free"


def test_a_prompt_files_written_examples_become_an_examples_node_over_the_training_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The examples a prompt file writes (Q:/A: pairs) are no longer plain text: optimize
    turns them into an Examples node whose pool is them and the training rows, says so, and
    the examples operators then find something to change."""
    from sammo_core import find_one, loads

    rows = [{"input": f"item {i}", "output": "yes" if i % 2 else "no"} for i in range(24)]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prompt = tmp_path / "prompt.md"
    prompt.write_text(
        "# Task\n\nAnswer yes or no.\n\n# Examples\n\nQ: is fire hot?\nA: yes\n\n"
        "Q: is ice hot?\nA: no\n\n# Question\n\nQ: {{ input }}\nA:"
    )
    run_dir = tmp_path / "run"
    with ChatServer(reply=lambda body: "yes") as server:
        args = [
            "optimize", str(prompt), "--data", str(data), "--model", "loopback",
            "--base-url", server.base_url, "--budget", "3", "--operators", "examples",
            "--out", str(run_dir),
        ]  # fmt: skip
        assert main(args) == 0
    err = capsys.readouterr().err
    assert "prompt file: 2 written examples (Q:/A:) became an Examples node" in err
    assert "nothing to change for" not in err.split("operators that can change")[1].splitlines()[0]
    start = loads((run_dir / "programs" / "0.json").read_text())
    shots = find_one(start, "#examples").node
    assert (shots.n, shots.data_format) == (2, "qa")
    assert shots.data.inputs[:2] == ("is fire hot?", "is ice hot?") and len(shots.data) == 2 + 12


def test_a_pipelined_beam_from_the_command_line(
    files: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--pipeline runs the beam with each step proposed while the one before is scored; its
    run says so, and the same seed gives the same trace; with another strategy it is refused
    in one line before any call."""
    program, data, _ = files
    traces = []
    with ChatServer(reply=reply) as server:
        for name in ("one", "two"):
            args = optimize_args(program, data, server.base_url, tmp_path / name, "--pipeline")
            assert main(args) == 0
            traces.append((tmp_path / name / "trace.jsonl").read_text())
        requests = server.stats().requests
        other = optimize_args(program, data, server.base_url, tmp_path / "evo", "--pipeline")
        other[other.index("beam")] = "evolution"
        assert main(other) == 1
        assert server.stats().requests == requests
    assert traces[0] == traces[1] and len(traces[0].splitlines()) > 10
    result = json.loads((tmp_path / "one" / "result.json").read_text())
    assert result["params"]["pipelined"] is True, result["params"]
    err = capsys.readouterr().err
    assert "--pipeline is for --strategy beam, not evolution: drop --pipeline" in err
    assert "Traceback" not in err
