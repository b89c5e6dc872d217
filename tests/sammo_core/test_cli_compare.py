"""`sammo-core run PROGRAM --compare OTHER` as a user runs it: against a real loopback
chat-completions server, the two programs on the same rows, compared row by row."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from sammo_core.cli import main
from sammo_core.stats import mcnemar_exact
from sammo_core.testing.chat_server import ChatServer

EXAMPLES = Path(__file__).parents[2] / "sammo_core" / "examples"
PROGRAM, DATA = EXAMPLES / "yesno.py", EXAMPLES / "yesno.jsonl"
GOLD = {
    json.loads(line)["input"]: json.loads(line)["output"] for line in DATA.read_text().splitlines()
}
#: The rows whose gold answer is No: those a model that always says Yes gets wrong.
NOS = sum(1 for answer in GOLD.values() if answer.lower() == "no")


def knows_only_the_example(request: Mapping[str, Any]) -> str:
    """Answers right when the prompt is the example program's; "Yes" to any other prompt."""
    prompt = request["messages"][-1]["content"]
    if "Answer the question with Yes or No." in prompt:
        return GOLD[re.findall(r"Input: (.*)", prompt)[-1].strip()]
    return "Yes"


@pytest.fixture
def other(tmp_path: Path) -> Path:
    path = tmp_path / "other.md"
    path.write_text("Answer yes or no.\n\n{{ input }}\n")
    return path


def compare(server: ChatServer, other: Path, *extra: str) -> int:
    return main(
        [
            *("run", str(PROGRAM), "--compare", str(other), "--data", str(DATA)),
            *("--model", "loopback", "--base-url", server.base_url, "--timeout", "5"),
            *extra,
        ]
    )


def test_compare_runs_both_on_the_same_rows_and_pairs_them(
    other: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    with ChatServer(reply=knows_only_the_example) as server:
        assert compare(server, other, "--out", str(out)) == 0
        assert server.stats().completions == 2 * len(GOLD)
    printed = capsys.readouterr()
    # Each program's table as `run` prints it, then the paired difference.
    assert f"PROGRAM: {PROGRAM}\n" in printed.out and f"OTHER: {other}\n" in printed.out
    assert "PROGRAM: 20 rows" in printed.out and "OTHER: 20 rows" in printed.out
    assert "1.000 [0.839, 1.000]" in printed.out  # PROGRAM: 20 of 20
    line = next(x for x in printed.out.splitlines() if "PROGRAM - OTHER" in x)
    p = mcnemar_exact(NOS, 0)
    head = "label_accuracy, PROGRAM - OTHER on the same 20 rows (paired 95% CI): "
    assert line.startswith(f"{head}+{NOS / 20:.3f} [")
    assert line.endswith(f"(n=20; {NOS} rows better, 0 worse; McNemar p={p:.3f})")
    # OTHER is scored by PROGRAM's objective, and told so.
    assert "scoring OTHER by PROGRAM's objective label_accuracy (its own would be accuracy)" in (
        printed.err
    )
    comparison = json.loads((out / "comparison.json").read_text())
    assert (comparison["program"], comparison["other"]) == (str(PROGRAM), str(other))
    assert comparison["rows"] == 20 and comparison["partial"] is False
    found = comparison["comparisons"]["label_accuracy"]
    assert (found["wins"], found["losses"], found["n"]) == (NOS, 0, 20)
    assert found["diff"] == pytest.approx(NOS / 20) and found["p_value"] == pytest.approx(p)
    assert found["ci_low"] > 0  # a clear winner: the interval excludes 0
    for role, value in (("program", 1.0), ("other", 1 - NOS / 20)):
        results = json.loads((out / role / "results.json").read_text())
        assert results["scores"]["label_accuracy"]["value"] == pytest.approx(value)
        assert results["usage"]["calls"] == 20  # each program's own calls
        assert (out / role / "predictions.jsonl").is_file()
        assert (out / role / "program.json").is_file()
    other_rows = (out / "other" / "predictions.jsonl").read_text().splitlines()
    assert json.loads(other_rows[0])["prompt"] == "Answer yes or no.\n\nIs water wet?"


def test_scored_runs_compare_the_log_likelihood_too(
    other: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --labels both programs' answers are read by label likelihood (the chat server's
    log-probabilities): the comparison adds the log-likelihood of the gold label, graded, so
    without McNemar."""
    with ChatServer(reply=knows_only_the_example) as server:
        assert compare(server, other, "--labels", "auto") == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if "PROGRAM - OTHER" in x]
    assert [x.split(",")[0] for x in lines] == ["label_accuracy", "label_loglik"]
    assert "McNemar" in lines[0] and "McNemar" not in lines[1]
    assert lines[1].split(": ")[1].startswith("+")  # PROGRAM is the surer of the right label


def test_a_cost_objective_has_no_rows_to_pair(
    other: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ChatServer(reply=knows_only_the_example) as server:
        assert compare(server, other, "--objective", "calls", "--limit", "3") == 0
    assert "no per-row scores to compare (a cost objective)" in capsys.readouterr().out


def test_a_missing_other_exits_1_before_any_call(capsys: pytest.CaptureFixture[str]) -> None:
    with ChatServer(reply=knows_only_the_example) as server:
        assert compare(server, Path("nope.md")) == 1
        assert server.stats().completions == 0
    err = capsys.readouterr().err
    assert "error: --compare 'nope.md' does not exist; pass the program to compare" in err


def test_programs_reading_different_gold_outputs_are_refused_before_any_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.py"  # reads its gold answers from another field than PROGRAM
    other.write_text(
        "from sammo_core import GenerateText, InputData, MetaPrompt, Output\n"
        "program = Output(GenerateText(MetaPrompt([InputData()])))\n"
        "OUTPUT_FIELD = 'input'\n"
    )
    with ChatServer(reply=knows_only_the_example) as server:
        assert compare(server, other) == 1
        assert server.stats().completions == 0
    assert "PROGRAM and OTHER read different gold outputs" in capsys.readouterr().err


def test_out_naming_a_file_fails_before_any_call(
    other: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("")
    with ChatServer(reply=knows_only_the_example) as server:
        assert compare(server, other, "--out", str(taken)) == 1
        assert server.stats().completions == 0
    assert "is a file; pass a directory" in capsys.readouterr().err
