"""What fuzzing the readers of user files found (issue 19), one case each, and the CLI path.

Each case failed before its fix: a foreign exception (RecursionError, UnicodeDecodeError,
TypeError, ValueError, csv.Error, ZeroDivisionError, SystemExit), a hang, or a wrong load. Now
each loads, or is refused with the project's own error in one line (see
``test_fuzz_user_files.py`` for the fuzzers themselves).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_user_files import SEEDS, TOKENS, check_data, check_program, fuzz, mutated

from sammo_core import Section
from sammo_core.cli import main
from sammo_core.errors import ConfigError, DataError, SerializationError, TemplateError
from sammo_core.testing.chat_server import ChatServer

DEEP = 100_000
YES = b'{"input": "Is water wet?", "output": "Yes"}\n'


@dataclasses.dataclass(frozen=True)
class Case:
    """A file that once broke a reader, and what reading it gives now."""

    name: str
    suffix: str  # ".md", ".xml", ".j2", ".py": a program file; ".jsonl", ".json", ".csv": data
    content: bytes
    error: type[Exception] | None  # None: it loads
    before: str  # what reading it did before the fix (measured)
    split: str | None = None
    program_json: bool = False  # a ".json" file read as a program, not as data

    @property
    def is_data(self) -> bool:
        return self.suffix in (".jsonl", ".json", ".csv") and not self.program_json


def nested_headings(depth: int) -> bytes:
    return b"".join(b"#" * (i + 1) + b" h\n\n" for i in range(depth)) + b"{{ input }}"


CASES = [
    Case("markdown, bad UTF-8", ".md", b"# T\n\xff {{ input }}", ConfigError, "UnicodeDecodeError"),
    Case("jinja, cut UTF-8", ".j2", b"{{ input }}\xc3", ConfigError, "UnicodeDecodeError"),
    Case("markdown, 3000 nested headings", ".md", nested_headings(3000), ConfigError,
         "RecursionError"),
    Case("xml, 2000 nested tags", ".xml", b"<a>\n" * 2000 + b"{{ input }}\n" + b"</a>\n" * 2000,
         ConfigError, "RecursionError after 2.6 s (quadratic)"),
    Case("xml, 100000 nested tags", ".xml", b"<a>\n" * DEEP + b"{{ input }}\n" + b"</a>\n" * DEEP,
         ConfigError, "hang (over 20 s)"),
    Case("xml jinja template, 100000 nested tags", ".xml.j2", b"<a>\n" * DEEP + b"{{ input }}\n" +
         b"</a>\n" * DEEP, ConfigError, "hang (over 30 s)"),
    Case("xml, open tag then 50000 spaces", ".xml", b"<a" + b" " * 50_000 + b"\n{{ input }}",
         None, "hang (over 20 s)"),
    Case("xml, 20000 unclosed tags", ".xml", b"<a>\n" * 20_000 + b"</b>\n" * 20_000 +
         b"{{ input }}", None, "hang (over 20 s)"),
    Case("xml, surrogate entity in a title", ".xml",
         b'<section title="&#xD800;">\n{{ input }}\n</section>', None, "TypeError (orjson)"),
    Case("jinja, 500 nested ifs", ".j2", b"{% if x %}" * 500 + b"{{ input }}" +
         b"{% endif %}" * 500, TemplateError, "RecursionError"),
    Case("jinja, 100000 nested parentheses", ".j2", b"{{ " + b"(" * DEEP + b"input" +
         b")" * DEEP + b" }}", TemplateError, "RecursionError"),
    Case("jinja, block open over 20000 blank lines", ".j2", b"{% if input %}" + b"\n\n" * 20_000 +
         b"{% endif %}{{ input }}", None, "hang (over 20 s)"),
    Case("jinja, string holding '}}' and 20000 blank lines", ".j2", b"{{ input }}{{ '}}" +
         b"\n\n" * 20_000 + b"' }}", None, "hang (over 30 s; quadratic)"),
    Case("jinja, heading computing 1/0", ".j2", b"# {{ 1/0 }}\n\n{{ input }}", TemplateError,
         "ZeroDivisionError"),
    Case("python, INPUT_FIELDS = 5", ".py", b"from sammo_core import *\nprogram = Output("
         b"GenerateText(MetaPrompt([InputData()])))\nINPUT_FIELDS = 5\n", ConfigError,
         "TypeError"),
    Case("python, exit(3) at module level", ".py", b"raise SystemExit(3)\n", ConfigError,
         "SystemExit (the CLI exits 3)"),
    Case("python, make_program raising KeyError", ".py", b'def make_program(examples):\n'
         b'    return {}["x"]\n', ConfigError, "KeyError"),
    Case("jsonl, 100000 nested arrays", ".jsonl", b'{"input": ' + b"[" * DEEP + b"]" * DEEP +
         b', "output": 1}\n', DataError, "RecursionError"),
    Case("json, 100000 nested arrays", ".json", b"[" * DEEP + b"]" * DEEP, DataError,
         "RecursionError"),
    Case("jsonl, 5000-digit integer", ".jsonl", b'{"input": ' + b"9" * 5000 + b', "output": 1}',
         DataError, "ValueError"),
    Case("jsonl, NaN and Infinity", ".jsonl", b'{"input": NaN, "output": Infinity}', DataError,
         "loaded; NaN hashed as null"),
    Case("jsonl, 1e400", ".jsonl", b'{"input": 1e400, "output": "x"}', DataError,
         "loaded as inf, hashed as null"),
    Case("csv, a 200000-character field", ".csv", b'input,output\n"' + b"a" * 200_000 + b'",1\n',
         DataError, "csv.Error"),
    Case("json, a split holding 5", ".json", b'{"train": 5}', DataError, "TypeError", "train"),
    Case("csv, a header name holding a line break", ".csv", b'"input,output\nIs it?,Yes\n"a\n',
         DataError, "error message of 3 lines"),
    Case("program JSON, '_type' misspelt", ".json", re.sub(
        rb'"_type": "[\w.]*GenerateText"', b'" type": "x"', SEEDS[".json"][0], count=1),
        SerializationError,
         "error message of 56 lines (pyglove prints the object)", program_json=True),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_found_case_loads_or_is_refused_in_one_line(tmp_path: Path, case: Case) -> None:
    if case.is_data:
        result = check_data(tmp_path, case.suffix, case.content, split=case.split)
    else:
        result = check_program(tmp_path, case.suffix, case.content)
    if case.error is None:
        assert result.error is None, f"{case.name}: {result.error}"
    else:
        assert isinstance(result.error, case.error), f"{case.name}: loaded {result.loaded}"


def test_byte_order_mark_is_dropped_before_the_first_heading(tmp_path: Path) -> None:
    """A BOM once kept the first line from reading as a heading: no section 'Task'."""
    result = check_program(tmp_path, ".md", "\ufeff# Task\n\nBe brief.\n\n{{ input }}".encode())
    first = result.loaded.program.child.prompt.children[0]
    assert isinstance(first, Section) and first.title == "Task"


def test_nesting_up_to_the_limit_still_loads(tmp_path: Path) -> None:
    from sammo_core.prompt_files import MAX_SECTION_DEPTH

    result = check_program(tmp_path, ".md", nested_headings(MAX_SECTION_DEPTH))
    assert result.error is None
    result = check_program(tmp_path, ".md", nested_headings(MAX_SECTION_DEPTH + 1))
    assert isinstance(result.error, ConfigError)
    assert f"more than {MAX_SECTION_DEPTH} deep" in str(result.error)


def test_malformed_csv_error_names_the_line_of_the_bad_row(tmp_path: Path) -> None:
    content = b'input,output\nx,1\ny,2\n"' + b"a" * 200_000 + b'",1\n'
    result = check_data(tmp_path, ".csv", content)
    assert isinstance(result.error, DataError)
    assert "fuzzed.csv line 4: malformed CSV" in str(result.error)


def test_xml_entity_of_a_surrogate_stays_text(tmp_path: Path) -> None:
    result = check_program(
        tmp_path, ".xml", b'<section title="a&#xD800;">\n{{ input }}\n</section>'
    )
    assert result.loaded.program.child.prompt.children[0].title == "a&#xD800;"


# -- the CLI path ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ChatServer]:
    with ChatServer() as running:
        yield running


def run_cli(
    server: ChatServer, folder: Path, program: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    args = ["run", str(program), "--data", str(data), "--model", "loopback"]
    code = main([*args, "--base-url", server.base_url, "--out", str(folder / "out")])
    return code, capsys.readouterr().err


CLI_NAMES = {
    "markdown, bad UTF-8",
    "xml, surrogate entity in a title",
    "jinja, heading computing 1/0",
    "python, INPUT_FIELDS = 5",
    "jsonl, NaN and Infinity",
    "jsonl, 5000-digit integer",
    "csv, a 200000-character field",
    "program JSON, '_type' misspelt",
}
CLI_CASES = [c for c in CASES if c.name in CLI_NAMES]


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: c.name)
def test_found_case_through_the_cli(
    tmp_path: Path, server: ChatServer, case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    """``sammo-core run`` on each file: a score, or one error line and exit 1; no traceback."""
    is_data = case.is_data
    program, data = tmp_path / f"p{'.md' if is_data else case.suffix}", tmp_path / "d.jsonl"
    program.write_bytes(b"# Task\n\nAnswer.\n\n{{ input }}")
    data.write_bytes(YES)
    (data if is_data else program).write_bytes(case.content)
    if is_data:
        data = data.rename(tmp_path / f"d{case.suffix}")
    code, err = run_cli(server, tmp_path, program, data, capsys)
    if case.error is None:
        assert code == 0, err
    else:
        assert code == 1 and err.startswith("error: ") and err.count("\n") == 1, err


@fuzz(12)
@given(
    suffix=st.sampled_from([".md", ".xml", ".j2"]),
    content=st.data(),
)
def test_fuzzed_prompt_file_through_the_cli(
    tmp_path_factory: pytest.TempPathFactory,
    server: ChatServer,
    capsys: pytest.CaptureFixture[str],
    suffix: str,
    content: st.DataObject,
) -> None:
    tokens = TOKENS["common"] + TOKENS["markdown"] + TOKENS["xml"] + TOKENS["jinja"]
    folder = tmp_path_factory.mktemp("cli")
    program, data = folder / f"p{suffix}", folder / "d.jsonl"
    program.write_bytes(content.draw(mutated(SEEDS[suffix], tokens)))
    data.write_bytes(YES)
    code, err = run_cli(server, folder, program, data, capsys)
    assert code == 0 or (code == 1 and err.startswith("error: ") and err.count("\n") == 1), err


def test_deeply_nested_loops_are_refused_before_jinja_compiles_them(tmp_path: Path) -> None:
    """Found with hypothesis, which raises the recursion limit: 300 nested loops took jinja's
    compiler 15 s (quadratic in depth), then failed with an IndentationError."""
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(3000)
    loops = b"{% for a in [1] %}\n\n" * 300 + b"{{ input }}" + b"{% endfor %}" * 300
    try:
        result = check_program(tmp_path, ".j2", loops)
    finally:
        sys.setrecursionlimit(limit)
    assert isinstance(result.error, TemplateError)
    assert "nested more than" in str(result.error)
