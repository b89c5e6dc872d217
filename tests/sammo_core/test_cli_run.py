"""`sammo-core run` as a user runs it: against a real loopback chat-completions server."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from sammo_core.cli import main
from sammo_core.testing.chat_server import ChatServer

EXAMPLES = Path(__file__).parents[2] / "sammo_core" / "examples"
PROGRAM, DATA = EXAMPLES / "yesno.py", EXAMPLES / "yesno.jsonl"
GOLD = {
    json.loads(line)["input"]: json.loads(line)["output"] for line in DATA.read_text().splitlines()
}


def oracle(request: Mapping[str, Any]) -> str:
    """Answers the question after the last 'Input:' right."""
    prompt = request["messages"][-1]["content"]
    question = re.findall(r"Input: (.*)", prompt)[-1].strip()
    return GOLD[question] + "\nbecause I know."


def run_cli(server: ChatServer, out: Path, *extra: str) -> int:
    return main(
        [
            "run",
            str(PROGRAM),
            "--data",
            str(DATA),
            "--model",
            "loopback",
            "--base-url",
            server.base_url,
            "--out",
            str(out),
            "--timeout",
            "5",
            *extra,
        ]
    )


def predictions(out: Path) -> list[Any]:
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    return [r["prediction"] for r in rows]


def test_run_writes_results_and_exact_prompts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ChatServer(reply=oracle) as server:
        assert run_cli(server, tmp_path) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["rows"] == 20
    assert results["scores"]["label_accuracy"]["value"] == 1.0
    assert results["usage"]["calls"] == 20
    assert results["model"] == "loopback"
    rows = [json.loads(x) for x in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert rows[0]["prompt"].endswith("# Question\n\nInput: Is water wet?\n\nOutput:")
    assert rows[0]["prompt"].startswith("# Task\n\nAnswer the question with Yes or No.")
    assert rows[0]["prediction"] == "Yes"
    table = capsys.readouterr().out
    assert "label_accuracy" in table and "1.000 [1.000, 1.000]" in table


def test_twenty_percent_faults_give_the_same_predictions(tmp_path: Path) -> None:
    with ChatServer(reply=oracle) as server:
        assert run_cli(server, tmp_path / "clean") == 0
    kinds = ("429", "500", "503", "drop", "garbage")
    with ChatServer(reply=oracle, fault_rate=0.2, fault_kinds=kinds, seed=1) as server:
        assert run_cli(server, tmp_path / "faulty") == 0
        faulted = sum(server.stats().by_fault.values())
    assert faulted >= 2
    assert predictions(tmp_path / "faulty") == predictions(tmp_path / "clean")


def test_second_run_from_the_cache_makes_no_calls(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    with ChatServer(reply=oracle) as server:
        assert run_cli(server, tmp_path / "a", "--cache", str(cache)) == 0
        assert run_cli(server, tmp_path / "b", "--cache", str(cache), "--replay") == 0
        assert server.stats().completions == 20
    first = json.loads((tmp_path / "a" / "results.json").read_text())
    replayed = json.loads((tmp_path / "b" / "results.json").read_text())
    second = replayed["usage"]
    assert second["calls"] == 0 and second["cache_hits"] == 20
    assert second["saved_prompt_tokens"] > 0
    # What the program costs per input does not depend on the cache; what was spent does.
    assert replayed["cost_per_input"] == first["cost_per_input"]
    assert first["cost_per_input"]["prompt_tokens"] * 20 == pytest.approx(
        first["usage"]["prompt_tokens"]
    )
    assert predictions(tmp_path / "b") == predictions(tmp_path / "a")


def test_replay_miss_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache.sqlite"
    with ChatServer(reply=oracle) as server:
        assert run_cli(server, tmp_path / "a", "--cache", str(cache), "--limit", "2") == 0
        code = run_cli(server, tmp_path / "b", "--cache", str(cache), "--replay")
    assert code == 1
    assert "readwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "nope.py", "--data", str(DATA), "--model", "x"], "does not exist"),
        (["run", str(PROGRAM), "--data", "nope.jsonl", "--model", "x"], "nope.jsonl"),
        (
            ["run", str(PROGRAM), "--data", str(DATA), "--model", "x", "--objective", "acc"],
            "unknown objective 'acc'",
        ),
    ],
)
def test_bad_input_exits_1_with_a_clear_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 1
    assert message in capsys.readouterr().err


def test_malformed_data_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "a", "output": "Yes"}\n{"input": "b", "output": \n')
    assert main(["run", str(PROGRAM), "--data", str(bad), "--model", "x"]) == 1
    err = capsys.readouterr().err
    assert "bad.jsonl line 2" in err


def test_an_existing_markdown_prompt_file_runs_as_a_program(tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.md"
    prompt.write_text("# Task\n\nAnswer Yes or No.\n\n# Question\n\n{{ input }}\n")

    def reply(request: Mapping[str, Any]) -> str:
        return GOLD[request["messages"][-1]["content"].rsplit("\n", 1)[-1].strip()]

    with ChatServer(reply=reply) as server:
        code = main(
            [
                "run",
                str(prompt),
                "--data",
                str(DATA),
                "--model",
                "loopback",
                "--base-url",
                server.base_url,
                "--out",
                str(tmp_path / "out"),
            ]
        )
    assert code == 0
    rows = [
        json.loads(x) for x in (tmp_path / "out" / "predictions.jsonl").read_text().split("\n") if x
    ]
    assert rows[0]["prompt"] == "# Task\n\nAnswer Yes or No.\n\n# Question\n\nIs water wet?"
    assert (
        json.loads((tmp_path / "out" / "results.json").read_text())["scores"]["accuracy"]["value"]
        == 1.0
    )
