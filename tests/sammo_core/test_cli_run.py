"""`sammo-core run` as a user runs it: against a real loopback chat-completions server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
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
    # 20 of 20 right: a Wilson interval, not the certainty of a bootstrap ([1.000, 1.000])
    assert "label_accuracy" in table and "1.000 [0.839, 1.000]" in table


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


# -- failures keep what was done; replies that are no answer are counted ---------------------

FAILING = "Is fire cold?"  # row 8 of 20


def failing_oracle(asked: list[str]) -> Callable[[Mapping[str, Any]], str]:
    """The oracle, except that FAILING always gets a server error; records who was asked."""

    def reply(request: Mapping[str, Any]) -> str:
        question = re.findall(r"Input: (.*)", request["messages"][-1]["content"])[-1].strip()
        asked.append(question)
        if question == FAILING:
            raise RuntimeError("simulated outage")
        return oracle(request)

    return reply


def results_of(out: Path) -> dict[str, Any]:
    return dict(json.loads((out / "results.json").read_text()))


def test_a_row_failing_for_good_stops_the_run_but_keeps_the_rows_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[str] = []
    with ChatServer(reply=failing_oracle(asked)) as server:
        code = run_cli(server, tmp_path, "--concurrency", "1", "--max-attempts", "2")
    assert code == 1
    assert asked.count(FAILING) == 2  # --max-attempts reaches the retry policy
    err = capsys.readouterr().err
    assert "error: model 'loopback'" in err and "failed after 2 attempts" in err
    assert "stopped after 8 of 20 rows; wrote them, marked partial" in err
    summary = results_of(tmp_path)
    assert summary["partial"] is True and summary["rows"] == 8 and summary["rows_in_data"] == 20
    assert "RunnerError" in summary["stopped"]
    assert summary["scores"]["label_accuracy"]["n"] == 8
    assert len(predictions(tmp_path)) == 8


def test_on_error_skip_records_the_row_as_failed_and_scores_it_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[str] = []
    with ChatServer(reply=failing_oracle(asked)) as server:
        code = run_cli(server, tmp_path, "--on-error", "skip", "--max-attempts", "1")
    assert code == 0
    assert asked.count(FAILING) == 1
    summary = results_of(tmp_path)
    assert summary["partial"] is False and summary["rows"] == 20
    assert summary["replies"] == {"failed": 1, "empty": 0, "unparsable": 0, "off_label": 0}
    assert summary["scores"]["label_accuracy"]["value"] == pytest.approx(19 / 20)
    rows = [json.loads(x) for x in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    failed = [r for r in rows if r["error"] is not None]
    assert [r["input"] for r in failed] == [FAILING] and failed[0]["prediction"] is None
    assert "failed after 1 attempt" in failed[0]["error"]
    out = capsys.readouterr().out
    assert re.search(r"failed rows \(scored wrong\)\s*│\s*1", out)


def test_empty_and_off_label_replies_are_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = {"Is water wet?": "", "Do birds have wings?": "yes AAAA", "Is fire cold?": "   "}

    def reply(request: Mapping[str, Any]) -> str:
        question = re.findall(r"Input: (.*)", request["messages"][-1]["content"])[-1].strip()
        return odd.get(question, oracle(request))

    with ChatServer(reply=reply) as server:
        assert run_cli(server, tmp_path) == 0
    summary = results_of(tmp_path)
    assert summary["replies"] == {"failed": 0, "empty": 2, "unparsable": 0, "off_label": 1}
    assert summary["scores"]["label_accuracy"]["value"] == pytest.approx(17 / 20)
    out = capsys.readouterr().out
    assert re.search(r"empty replies\s*│\s*2", out) and re.search(r"off-label replies\s*│\s*1", out)


def test_out_naming_a_file_fails_before_any_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "results"
    taken.write_text("keep me")
    with ChatServer(reply=oracle) as server:
        assert run_cli(server, taken) == 1
        assert server.stats().completions == 0
    assert "--out" in capsys.readouterr().err and taken.read_text() == "keep me"


def _fourth_request_in(server: ChatServer) -> bool:
    stats = server.stats()
    return stats.completions >= 3 and stats.in_flight >= 1


def test_ctrl_c_writes_the_rows_done_and_says_where(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with ChatServer(reply=oracle, latency=0.3) as server:
        command = [sys.executable, "-m", "sammo_core.cli", "run", str(PROGRAM), "--data"]
        command += [str(DATA), "--model", "loopback", "--base-url", server.base_url]
        command += ["--out", str(out), "--concurrency", "1"]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
        )
        try:
            deadline = time.monotonic() + 60
            # Three replies sent and the fourth request in: the client holds three rows
            # (three replies sent alone could still be on their way back to it).
            while not _fourth_request_in(server) and time.monotonic() < deadline:
                time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 130
    summary = results_of(out)
    done = summary["rows"]
    assert summary["partial"] is True and 3 <= done < 20
    assert len(predictions(out)) == done
    expected = f"interrupted (Ctrl-C): {done} of 20 rows were done; wrote them, marked partial, to"
    assert expected in err
    assert str(out / "results.json") in err.replace("\n", "")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).parents[2])
    return env


def test_labels_set_the_objective_and_the_report_says_how_answers_were_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--labels lists the labels on the call: a chat server with log-probabilities scores them
    by the first answer token (the report says so and adds the log-likelihood); label_accuracy
    is the objective and the majority-label rate stands beside it."""
    with ChatServer(reply=oracle) as server:
        assert run_cli(server, tmp_path / "out", "--labels", "auto") == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    program = json.loads((tmp_path / "out" / "program.json").read_text())
    gold = list(GOLD.values())
    majority = max(gold.count("Yes"), gold.count("No")) / len(gold)
    assert set(results["scores"]) == {"label_accuracy", "label_loglik"}
    assert results["majority_rate"] == pytest.approx(majority)
    assert results["scoring"] == "label likelihood (rank classification over ['No', 'Yes'])"
    assert '"labels": ["No", "Yes"]' in json.dumps(program)
    lines = (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert all(set(r["label_logprobs"]) == {"No", "Yes"} for r in rows)
    printed = capsys.readouterr().out
    assert "majority-label rate" in printed and "scoring" in printed
    with ChatServer(reply=oracle) as server:
        assert run_cli(server, tmp_path / "bad", "--labels", "yes") == 1
        assert server.stats().completions == 0
    assert "--labels 'yes' needs at least two distinct labels" in capsys.readouterr().err


def test_the_program_exits_with_its_commands_code_and_files(tmp_path: Path) -> None:
    """The ``sammo-core`` program (``cli.script``) skips collecting at exit: what a command
    wrote is whole, and its exit code is the command's."""
    import subprocess
    import sys
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="sammo-core")
    assert script.value == "sammo_core.cli:script"
    run = [sys.executable, "-m", "sammo_core.cli", "run", str(PROGRAM), "--data", str(DATA)]
    with ChatServer(reply=oracle) as server:
        model = ["--model", "loopback", "--base-url", server.base_url, "--timeout", "5"]
        done = subprocess.run([*run, *model, "--out", str(tmp_path / "r")], capture_output=True,
                              text=True, cwd=tmp_path, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        results = json.loads((tmp_path / "r" / "results.json").read_text())
        assert results["rows"] == 20 and results["usage"]["calls"] == 20
        assert len((tmp_path / "r" / "predictions.jsonl").read_text().splitlines()) == 20
        refused = subprocess.run([*run, *model, "--concurrency", "0"], capture_output=True,
                                 text=True, cwd=tmp_path, check=False)  # fmt: skip
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
