"""``--mode`` and ``--stop`` on ``sammo-core run``: prompting a base model from the command line.

A prompt file runs in chat mode as written; with ``--mode completion --stop '\\n'`` the same file
goes to ``/v1/completions`` as its rendered text, with the stops, and the program written to
``--out`` says so. Played against the loopback server, as a user would run it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from sammo_core import GenerateText, InputData, MetaPrompt, Output, Section, loads
from sammo_core.cli import main
from sammo_core.loading import with_call_options
from sammo_core.testing.chat_server import ChatServer

PROMPT = "Answer yes or no.\n\nInput: {{ input }}\nOutput:"
ROWS = [{"input": "Is water wet?", "output": "yes"}, {"input": "Is fire cold?", "output": "no"}]
GOLD = {row["input"]: row["output"] for row in ROWS}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    prompt, data = tmp_path / "prompt.md", tmp_path / "data.jsonl"
    prompt.write_text(PROMPT)
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    return prompt, data


class BaseModel:
    """Records every request body; answers the question, then goes on like a base model."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, body: Mapping[str, Any]) -> str:
        self.bodies.append(dict(body))
        text = body["prompt"] if "prompt" in body else body["messages"][-1]["content"]
        question = text.rsplit("Input: ", 1)[1].split("\n", 1)[0]
        return f"{GOLD[question]}\n\nInput: Is the sky green?\nOutput: no"


def run(server: ChatServer, prompt: Path, data: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "run",
            str(prompt),
            "--data",
            str(data),
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


def test_mode_completion_and_stop_send_the_rendered_prompt_and_stops_to_completions(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    prompt, data = files
    model = BaseModel()
    with ChatServer(reply=model) as server:
        # As typed in a shell: --stop '\n' is a backslash and an n, read as a newline.
        assert run(server, prompt, data, tmp_path / "out", "--mode", "completion",
                   "--stop", "\\n", "--stop", "Input:") == 0  # fmt: skip
        paths = {record.path for record in server.records}
    assert paths == {"/v1/completions"}
    assert sorted(body["prompt"] for body in model.bodies) == sorted(
        f"Answer yes or no.\n\nInput: {row['input']}\nOutput:" for row in ROWS
    )
    assert all(body["stop"] == ["\n", "Input:"] for body in model.bodies)
    rows = [json.loads(x) for x in (tmp_path / "out" / "predictions.jsonl").read_text().split("\n")
            if x]  # fmt: skip
    assert {row["prompt"] for row in rows} == {body["prompt"] for body in model.bodies}
    saved = loads((tmp_path / "out" / "program.json").read_bytes())
    assert saved.child.mode == "completion" and list(saved.child.stop) == ["\n", "Input:"]
    assert prompt.read_text() == PROMPT  # the user's file is left as written


def test_without_the_flags_a_prompt_file_runs_as_written_in_chat_mode(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    prompt, data = files
    model = BaseModel()
    with ChatServer(reply=model) as server:
        assert run(server, prompt, data, tmp_path / "out") == 0
        paths = {record.path for record in server.records}
    assert paths == {"/v1/chat/completions"}
    assert all("stop" not in body for body in model.bodies)
    saved = loads((tmp_path / "out" / "program.json").read_bytes())
    assert saved.child.mode == "chat" and list(saved.child.stop) == []


def test_a_bad_mode_or_stop_is_refused_before_any_call(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompt, data = files
    with ChatServer(reply=BaseModel()) as server:
        with pytest.raises(SystemExit) as exit_info:
            run(server, prompt, data, tmp_path / "a", "--mode", "base")
        assert exit_info.value.code == 2
        assert "--mode: invalid choice: 'base' (choose from 'chat', 'completion')" in (
            capsys.readouterr().err
        )
        with pytest.raises(SystemExit):
            run(server, prompt, data, tmp_path / "b", "--stop", "")
        assert "--stop '' is empty" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            run(server, prompt, data, tmp_path / "c", "--stop", "end\\")
        assert "--stop 'end\\\\' has a bad escape" in capsys.readouterr().err
        assert server.stats().requests == 0


def test_mode_reaches_nested_calls_and_stop_only_the_root_call() -> None:
    nested = GenerateText(MetaPrompt(["Summarize:", InputData()]), stop=["END"])
    program = Output(GenerateText(MetaPrompt([Section("Summary", [nested]), "Answer:"])))
    base = with_call_options(program, mode="completion", stop=["\n"])
    inner = base.child.prompt.children[0].children[0]
    assert (base.child.mode, list(base.child.stop)) == ("completion", ["\n"])
    assert (inner.mode, list(inner.stop)) == ("completion", ["END"])
    # The argument is untouched, and no flags give the program back as it is.
    assert program.child.mode == "chat" and nested.mode == "chat"
    assert with_call_options(program) is program


def test_a_known_base_model_gets_completion_mode_and_a_newline_stop_and_is_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A prompt file (chat mode as written) run on local:gemma3, a base model, is prompted in
    completion mode with stop '\\n', and stderr says so; --mode chat keeps chat; another model
    keeps the program as written."""
    import argparse

    from sammo_core.cli_run import load_program_from_args

    prompt = tmp_path / "prompt.md"
    prompt.write_text("# Task\nAnswer yes or no.\n\nInput: {{ input }}\nOutput:")

    def loaded(model: str, mode: str | None = None) -> Any:
        args = argparse.Namespace(
            program=prompt, append_input=False, mode=mode, stop=None, model=model
        )
        return load_program_from_args(args).program.child

    base = loaded("local:gemma3")
    assert (base.mode, list(base.stop)) == ("completion", ["\n"])
    assert (
        "local:gemma3 is a base model: prompting it in completion mode" in capsys.readouterr().err
    )
    chat = loaded("local:gemma3", mode="chat")
    assert chat.mode == "chat" and not capsys.readouterr().err
    other = loaded("local")
    assert (other.mode, list(other.stop)) == ("chat", [])


def test_a_completion_prompt_that_does_not_end_with_its_answer_cue_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from sammo_core import dumps
    from sammo_core.cli_run import load_program_from_args

    program = Output(
        GenerateText(
            MetaPrompt(
                [Section("Task", ["x"]), Section("In", [InputData()])], section_format="json"
            )
        )
    )
    path = tmp_path / "program.json"
    path.write_text(dumps(program))
    args = argparse.Namespace(
        program=path, append_input=False, mode="completion", stop=None, model="loopback"
    )
    load_program_from_args(args)
    err = capsys.readouterr().err
    assert "warning: in completion mode" in err and "section format 'json'" in err
    args.mode = "chat"
    load_program_from_args(args)
    assert "warning" not in capsys.readouterr().err


def test_a_base_model_scores_the_objectives_labels_by_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """yesno.py declares OBJECTIVE label_accuracy:yes,no: on local:gemma3 (a base model) its
    call lists those labels, so answers are scored, and stderr says so; on another model, or
    with --labels, nothing is guessed."""
    import argparse

    from sammo_core.cli_run import labelled_program
    from sammo_core.data import DataTable
    from sammo_core.loading import load_program

    examples = Path(__file__).parents[2] / "sammo_core" / "examples"
    loaded = load_program(examples / "yesno.py")
    data = DataTable.load(examples / "yesno.jsonl")  # the gold outputs write Yes and No

    def labels(model: str, given: str | None = None) -> list[str]:
        args = argparse.Namespace(model=model, labels=given, calibrate=False, objective=None)
        program, objective = labelled_program(args, loaded, [data])
        assert objective is None or objective.startswith("label_accuracy:")
        return [str(x) for x in program.program.child.labels]

    assert labels("local:gemma3") == ["Yes", "No"]  # as the data spells them
    assert "scoring the labels ['Yes', 'No'] of the objective" in capsys.readouterr().err
    assert labels("local") == [] and not capsys.readouterr().err
    assert labels("local:gemma3", "Yes,No") == ["Yes", "No"]
