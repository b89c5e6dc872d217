"""Fuzzing the readers of the files a user writes (issue 19): program JSON, prompt files (markdown,
XML, jinja), data files (JSONL, CSV, JSON) and program ``.py`` files as far as loading goes.

Each reader is fed mutated valid files (the shipped examples and small prompt files as seeds:
bytes and tokens flipped, inserted, deleted, the file cut short), random bytes, deep nesting,
huge numbers, bad UTF-8, BOMs, NUL bytes and very long lines. The only outcomes allowed are a
load or the project's own error (a :class:`SammoError`, whose message is one line, or a ``.py``
file's error pointing at its line); never another exception, never a hang past :data:`HANG_S`,
never more than :data:`MEMORY_BOUND` bytes allocated. The default suite runs a few dozen examples
per reader; the slow suite runs many more (``pytest -m slow``).
"""

from __future__ import annotations

import dataclasses
import signal
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sammo_core import DataTable, dumps
from sammo_core.errors import SammoError
from sammo_core.example_blocks import extract_examples
from sammo_core.loading import load_data, load_program
from sammo_core.prompt_files import render_request

EXAMPLES = Path(__file__).parents[2] / "sammo_core" / "examples"
HANG_S = 30.0  # far past any real load: a hang detector, not a timing assertion
MEMORY_BOUND = 512 * 2**20  # traced Python allocations per example
FAST = 40  # examples per reader in the default suite
SLOW = 1500  # ... and in the slow suite


class Hung(BaseException):
    """Raised by the alarm inside a reader that ran past :data:`HANG_S` (not an Exception, so
    no ``except Exception`` in the reader can swallow it)."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    loaded: Any
    error: SammoError | None


def outcome(call: Callable[[], Any], content: bytes, keep: Path) -> Outcome:
    """Run one read of ``content``; fail the test on a hang (``content`` is then kept in the
    file ``keep`` to study), on memory past the bound, or on a foreign error."""

    def alarm(signum: int, frame: Any) -> None:
        raise Hung(f"still reading after {HANG_S:g} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_S)
    tracemalloc.start()
    try:
        return Outcome(call(), None)
    except SammoError as exc:
        return Outcome(None, exc)
    except Hung:
        keep.write_bytes(content)
        raise AssertionError(
            f"reading {len(content):,} bytes ({content[:80]!r}...) hung; kept in {keep}"
        ) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak <= MEMORY_BOUND, f"reading took {peak:,} bytes (bound {MEMORY_BOUND:,})"


def check_program(tmp: Path, suffix: str, content: bytes) -> Outcome:
    """Load ``content`` as a program file named ``*<suffix>``; a SammoError must be one line
    (a ``.py`` file's error may quote the line it points at)."""
    path = tmp / f"fuzzed{suffix}"
    path.write_bytes(content)
    result = outcome(lambda: load_program(path), content, tmp / f"hung{suffix}")
    if result.error is not None and suffix != ".py":
        assert "\n" not in str(result.error), str(result.error)
    return result


def check_data(tmp: Path, suffix: str, content: bytes, **options: Any) -> Outcome:
    path = tmp / f"fuzzed{suffix}"
    path.write_bytes(content)
    result = outcome(lambda: load_data(path, **options), content, tmp / f"hung{suffix}")
    if result.error is not None:
        assert "\n" not in str(result.error), str(result.error)
    return result


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# -- seeds and mutations --------------------------------------------------------------------------


PYTHON_SEED = b"""from sammo_core import GenerateText, InputData, MetaPrompt, Output, Section

program = Output(GenerateText(MetaPrompt([Section("Task", ["Say yes."]), InputData()])))
INPUT_FIELD = "input"
OBJECTIVE = "accuracy"
"""
SEEDS: dict[str, list[bytes]] = {
    ".json": [
        dumps(load_program(EXAMPLES / f).program).encode() for f in ("yesno.py", "sentiment.py")
    ],
    ".md": [
        b"# Task\n\nAnswer yes or no.\n\n## Examples\n\nInput: fire\nOutput: yes\n\n"
        b"# Input\n\n{{ input }}\n",
        b"Intro.\n\n```\n# not a heading\n```\n\n- a\n- b\n\nText: {{ question }} {{ ctx }}",
    ],
    ".xml": [
        b"<instructions>\nBe brief.\n</instructions>\n<input>{{input}}</input>\n",
        b'<section title="Task &amp; more">\n<rules>\nNo &lt;tags&gt;.\n</rules>\n</section>\n'
        b"<examples>\nQ: 1+1?\nA: 2\n</examples>\n{{ input }}",
    ],
    ".j2": [
        b"# Task\n\n{% if question %}Answer {{ question }}.{% endif %}\n\n"
        b"{% for x in [1, 2] %}- {{ x }}\n{% endfor %}\n\n# Input\n\n{{ input }}\n",
        b"{% set n = 2 %}{{ input | upper }}{# note #}\n\n{{- input ~ '!' -}}\n"
        b"{% raw %}{{{% endraw %}",
    ],
    ".xml.j2": [
        b"<task>\n{% if x %}Be brief.{% endif %}\n</task>\n<input>\n{{ input }}\n</input>\n",
        b"{% for s in ['a', 'b'] %}\n<item>\n{{ s }}\n</item>\n{% endfor %}\n{{ input }}",
    ],
    ".py": [PYTHON_SEED],
    ".jsonl": [
        (EXAMPLES / "yesno.jsonl").read_bytes()[:300],
        b'{"input": {"q": "a"}, "output": 1}\n',
    ],
    "data.json": [b'[{"input": "a", "output": "b"}]', b'{"data": [{"input": 1, "output": 2.5}]}'],
    ".csv": [b'input,output\nIs water wet?,Yes\n"a, ""quoted""\nline",No\n'],
}

TOKENS: dict[str, list[bytes]] = {
    "common": [b"\x00", b"\xff", b"\xc3", b"\xef\xbb\xbf", b"\xed\xa0\x80", b"\r\n", b"\n\n"],
    "json": [
        b"[",
        b"]",
        b"{",
        b"}",
        b'"',
        b",",
        b":",
        b"NaN",
        b"-Infinity",
        b"1e400",
        b"-0",
        b"1180591620717411303424",
        b"9" * 5000,
        b"null",
        b'"_type"',
        b"\\ud800",
        b"\\u0000",
    ],
    "markdown": [
        b"#",
        b"# ",
        b"###### ",
        b"```",
        b"~~~",
        b"{{ input }}",
        b"{{ ",
        b" }}",
        b"\\#",
        b"{{ if }}",
        b"{ input }",
        b"Input: x\nOutput: y\n\n",
    ],
    "xml": [
        b"<a>",
        b"</a>",
        b"<section>",
        b'<section title="x">',
        b"</section>",
        b"&#xD800;",
        b"&#0;",
        b"&#9999999;",
        b"&lt;section",
        b"<a/>",
        b"<",
        b">",
        b"<a ",
        b"  ",
    ],
    "jinja": [
        b"{%",
        b"%}",
        b"{{",
        b"}}",
        b"{#",
        b"#}",
        b"{% if x %}",
        b"{% endif %}",
        b"{% for i in range(10**9) %}",
        b"{% endfor %}",
        b"{% raw %}",
        b"{% endraw %}",
        b"{{ 1/0 }}",
        b"{{ input.x }}",
        b"{{-",
        b"-}}",
        b"{% set a %}",
        b"{% endset %}",
        b"{% macro m() %}{{ m() }}",
        b"{% endmacro %}",
        b"{% include 'x' %}",
        b"(",
        b")",
    ],
    "python": [
        b"(",
        b")",
        b"[",
        b"]",
        b":",
        b"\n    ",
        b"raise SystemExit(3)\n",
        b"= 5\n",
        b"INPUT_FIELDS = 5\n",
        b"OBJECTIVE = [1]\n",
        b"program = 1\n",
        b"import os\n",
    ],
    "csv": [b",", b'"', b'""', b"\r", b"a" * 140_000],
}


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes], tokens: list[bytes]) -> bytes:
    """A seed with a few byte and token edits, or cut short."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["flip", "insert", "token", "delete", "truncate", "repeat"]))
        if kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "token":
            data[at:at] = draw(st.sampled_from(tokens)) * draw(st.sampled_from([1, 1, 2, 300]))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 40))] * draw(st.integers(2, 300))
    return bytes(data)


#: Deep nesting per reader: (opener, middle, closer), repeated up to 100000 times.
NESTING: dict[str, list[tuple[bytes, bytes, bytes]]] = {
    ".json": [
        (b"[", b"", b"]"),
        (b'{"a": ', b"1", b"}"),
        (b'{"_type": "sammo_core.components.Section", "title": "t", "children": [', b"", b"]}"),
    ],
    ".md": [(b"#", b" h\n\n", b"")],
    ".xml": [(b"<a>\n", b"{{ input }}\n", b"</a>\n"), (b"<a>", b"", b"</b>")],
    ".j2": [
        (b"{% if x %}", b"{{ input }}", b"{% endif %}"),
        (b"{{ (", b"input", b") }}"),
        (b"{{ input }}{{ [", b"", b"] }}"),
        (b"{% for a in [1] %}\n\n", b"", b"{% endfor %}"),
    ],
    ".xml.j2": [
        (b"<a>\n", b"{{ input }}\n", b"</a>\n"),
        (b"{% if x %}\n<a>\n", b"", b"</a>\n{% endif %}"),
    ],
    ".py": [(b"x = [", b"", b"]")],
    ".jsonl": [(b'{"input": [', b"", b'], "output": 1}')],
    "data.json": [(b"[", b"", b"]"), (b'{"a": ', b"1", b"}")],
    ".csv": [(b'"', b"", b'"')],
}


@st.composite
def nested(draw: st.DrawFn, kinds: list[tuple[bytes, bytes, bytes]]) -> bytes:
    opener, middle, closer = draw(st.sampled_from(kinds))
    depth = draw(st.sampled_from([300, 1000, 5000, 100_000]))
    if opener == b"#":  # markdown: one heading per level
        return b"".join(b"#" * (i + 1) + middle for i in range(min(depth, 5000))) + b"{{ input }}"
    return opener * depth + middle + (closer * depth if draw(st.booleans()) else b"")


def files(kind: str, *tokens: str) -> st.SearchStrategy[bytes]:
    """Fuzzed files of one kind: mutated seeds, random bytes and text, deep nesting, a BOM,
    a very long line."""
    seeds = SEEDS[kind]
    pool = [t for name in ("common", *tokens) for t in TOKENS[name]]
    return st.one_of(
        mutated(seeds, pool),
        mutated(seeds, pool),
        mutated(seeds, pool),
        st.binary(max_size=300),
        st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
        nested(NESTING[kind]),
        st.sampled_from(seeds).map(lambda s: b"\xef\xbb\xbf" + s),
        st.sampled_from(seeds).map(lambda s: s.replace(b"\n", b" " * 300_000 + b"\n", 1)),
    )


def fuzz(n: int) -> Callable[[Any], Any]:
    """Hypothesis settings for one reader: ``n`` examples, reproducible."""
    return settings(
        max_examples=n,
        deadline=timedelta(seconds=HANG_S),
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        # No shrinking: a hang costs HANG_S a try; the failing example is printed as drawn.
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )


PROMPT_TOKENS = {
    ".md": ("markdown",),
    ".xml": ("xml", "markdown"),
    ".j2": ("jinja", "markdown"),
    ".xml.j2": ("jinja", "xml"),
}
DATA_TOKENS = {".jsonl": ("json",), "data.json": ("json",), ".csv": ("csv",)}


def suffix_of(kind: str) -> str:
    return ".json" if kind == "data.json" else kind


# -- the fuzzers ---------------------------------------------------------------------------------


def fuzz_program_json(tmp: Path, content: bytes) -> None:
    check_program(tmp, ".json", content)


def fuzz_prompt_file(tmp: Path, suffix: str, content: bytes) -> None:
    """Load the file; when it loads, render its prompt for one row and find its written
    examples (as ``run`` and ``optimize`` do), with the same outcomes allowed."""
    loaded = check_program(tmp, suffix, content).loaded
    if loaded is not None:
        program = loaded.program
        outcome(lambda: render_request(program, {"input": "x"}), content, tmp / "hung-render")
        outcome(lambda: extract_examples(program, DataTable(["q"], ["a"])), content, tmp / "hung-x")


def fuzz_python_file(tmp: Path, content: bytes) -> None:
    check_program(tmp, ".py", content)


def fuzz_data_file(tmp: Path, kind: str, content: bytes) -> None:
    check_data(tmp, suffix_of(kind), content)
    if kind == "data.json":  # the same file read by split name
        check_data(tmp, ".json", b'{"train": ' + content + b"}", split="train")


@fuzz(FAST)
@given(content=files(".json", "json"))
def test_program_json_loads_or_refuses_in_one_line(tmp: Path, content: bytes) -> None:
    fuzz_program_json(tmp, content)


@pytest.mark.parametrize("suffix", sorted(PROMPT_TOKENS))
@fuzz(FAST)
@given(data=st.data())
def test_prompt_file_loads_or_refuses_in_one_line(
    tmp: Path, suffix: str, data: st.DataObject
) -> None:
    fuzz_prompt_file(tmp, suffix, data.draw(files(suffix, *PROMPT_TOKENS[suffix])))


@fuzz(FAST // 2)
@given(content=files(".py", "python"))
def test_python_file_loads_or_refuses(tmp: Path, content: bytes) -> None:
    fuzz_python_file(tmp, content)


@pytest.mark.parametrize("kind", sorted(DATA_TOKENS))
@fuzz(FAST)
@given(data=st.data())
def test_data_file_loads_or_refuses_in_one_line(tmp: Path, kind: str, data: st.DataObject) -> None:
    fuzz_data_file(tmp, kind, data.draw(files(kind, *DATA_TOKENS[kind])))


@pytest.mark.slow
@fuzz(SLOW)
@given(content=files(".json", "json"))
def test_program_json_fuzz_long(tmp: Path, content: bytes) -> None:
    fuzz_program_json(tmp, content)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", sorted(PROMPT_TOKENS))
@fuzz(SLOW)
@given(data=st.data())
def test_prompt_file_fuzz_long(tmp: Path, suffix: str, data: st.DataObject) -> None:
    fuzz_prompt_file(tmp, suffix, data.draw(files(suffix, *PROMPT_TOKENS[suffix])))


@pytest.mark.slow
@fuzz(SLOW // 5)
@given(content=files(".py", "python"))
def test_python_file_fuzz_long(tmp: Path, content: bytes) -> None:
    fuzz_python_file(tmp, content)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(DATA_TOKENS))
@fuzz(SLOW)
@given(data=st.data())
def test_data_file_fuzz_long(tmp: Path, kind: str, data: st.DataObject) -> None:
    fuzz_data_file(tmp, kind, data.draw(files(kind, *DATA_TOKENS[kind])))
