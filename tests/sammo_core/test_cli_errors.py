"""Bad inputs end in one clear ``error:`` line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sammo_core.cli import main

EXAMPLES = Path(__file__).parents[2] / "sammo_core" / "examples"
PROGRAM, DATA = str(EXAMPLES / "yesno.py"), str(EXAMPLES / "yesno.jsonl")
# Nothing listens here: every case must fail before the first call.
NO_SERVER = ["--model", "m", "--base-url", "http://127.0.0.1:9/v1"]


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _template_program(tmp: Path, text: str) -> str:
    from sammo_core import GenerateText, InputData, MetaPrompt, Output, Template, dumps

    prompt = MetaPrompt([Template(text, id="evil"), InputData()])
    return _write(tmp / "evil.json", dumps(Output(GenerateText(prompt))))


def _run_dir(tmp: Path) -> str:
    result = {
        "objectives": [{"name": "accuracy", "direction": "maximize"}],
        "front": [{"id": 0, "scores": {"accuracy": {"value": 1.0}}}],
        "best": {"id": 0},
    }
    (tmp / "run").mkdir()
    _write(tmp / "run" / "result.json", json.dumps(result))
    return str(tmp / "run")


Case = Callable[[Path], list[str]]
CASES: dict[str, tuple[Case, str]] = {
    "py syntax error": (
        lambda t: ["run", _write(t / "p.py", "x = 1\nprogram = (\n"), "--data", DATA, *NO_SERVER],
        "p.py, line 2: SyntaxError: '(' was never closed\n    program = (",
    ),
    "py raises": (
        lambda t: ["run", _write(t / "p.py", "x = 1\ny = nope\n"), "--data", DATA, *NO_SERVER],
        "p.py, line 2: running the program file raised NameError",
    ),
    "_type null": (
        lambda t: [
            "run",
            _write(t / "p.json", '{"sammo_core_program": 1, "program": {"_type": null}}'),
            "--data",
            DATA,
            *NO_SERVER,
        ],
        "'_type' at <root> is null; it must name a component class",
    ),
    "deep JSON": (
        lambda t: [
            "run",
            _write(
                t / "p.json",
                '{"sammo_core_program": 1, "program": ' + "[" * 1000 + "]" * 1000 + "}",
            ),
            "--data",
            DATA,
            *NO_SERVER,
        ],
        "nested more than 200 levels deep",
    ),
    "template range over the limit": (
        lambda t: [
            "run",
            _template_program(t, "{{ range(10**9)|list }}"),
            "--data",
            DATA,
            *NO_SERVER,
        ],
        "#evil Template('{{ range(10**9)|list }}'): template exceeds the sandbox limit: "
        "Range too big",
    ),
    "template memory bomb": (
        lambda t: ["run", _template_program(t, "{{ 'x' * 10**10 }}"), "--data", DATA, *NO_SERVER],
        "'*' would make 10,000,000,000 characters",
    ),
    "bad base url": (
        lambda t: ["run", PROGRAM, "--data", DATA, "--model", "m", "--base-url", "http://[::1"],
        "'http://[::1' is not a valid URL (Invalid IPv6 URL); write it like",
    ),
    "pick value not a number": (
        lambda t: ["export", _run_dir(t), "--pick", "limit:accuracy=abc"],
        "'abc' is not a number; write e.g. --pick limit:accuracy=0.8",
    ),
    "cache is a directory": (
        lambda t: ["run", PROGRAM, "--data", DATA, *NO_SERVER, "--cache", str(t)],
        "is a directory; name a file in it, e.g. --cache",
    ),
    "empty data file": (
        lambda t: ["run", PROGRAM, "--data", _write(t / "empty.jsonl", ""), *NO_SERVER],
        "empty.jsonl has no rows",
    ),
    "out is a file": (
        lambda t: ["run", PROGRAM, "--data", DATA, *NO_SERVER, "--out", _write(t / "f", "x")],
        "is a file; pass a directory",
    ),
    "max attempts zero": (
        lambda t: ["run", PROGRAM, "--data", DATA, *NO_SERVER, "--max-attempts", "0"],
        "'0' must be at least 1",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gives_one_error_line_and_no_traceback(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_args, message = CASES[name]
    try:
        code = main(make_args(tmp_path))
    except SystemExit as exc:  # argparse rejects a bad flag value this way
        code = exc.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert code not in (0, None)
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    assert message in err
