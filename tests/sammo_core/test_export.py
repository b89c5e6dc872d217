"""Exports: templates that render the exact prompt, loadable JSON, messages, manifests, files."""

from __future__ import annotations

import doctest
import importlib.metadata
import json
import os
import string
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sammo_core import (
    ConfigError,
    DataTable,
    Examples,
    GenerateText,
    InputData,
    MetaPrompt,
    Output,
    ScriptedRunner,
    Section,
    Template,
    compile,
    export,
    loads,
)
from sammo_core.export import (
    EXPORT_FILES,
    EXPORT_FORMATS,
    MANIFEST_FILES,
    Manifest,
    build_manifest,
    export_program,
    program_template,
    write_export,
)
from sammo_core.prompt_files import parse_markdown

EXAMPLES = DataTable(["I loved it.", "Boring."], ["positive", "negative"])
INPUTS = [
    "hello",
    "{{ evil }}",
    "{% raw %}x{% endraw %} and {% if a %}",
    "a {# comment #} b }} {{",
    "two\nlines",
    "ünïcödé ✓",
    "SammoInputSentinel",
]


def prompts(program: Output, values: list[Any]) -> list[list[str]]:
    """The messages the program sends for each value, through the real run path."""
    runner = ScriptedRunner(default="positive")
    compile(program).run_sync(DataTable(values), runner, max_concurrency=1)
    return [[m.content for m in r.messages] for r in runner.requests]


def render(template: str, value: Any) -> str:
    return jinja2.Template(template).render(input=value)


def sentiment(**kwargs: Any) -> Output:
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", ["Classify the sentiment. Write {{ label }} literally."]),
                    Section("Examples", [Examples(EXAMPLES, **kwargs)]),
                    Section("Review", [InputData()]),
                ]
            )
        )
    )


def test_doctests() -> None:
    result = doctest.testmod(export, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 5 and result.failed == 0


def test_markdown_export_exactly() -> None:
    # The input line and its answer cue come from the plain data format, rendered for real.
    (user,) = prompts(sentiment(), ["SammoProbe"])[0]
    assert export_program(sentiment(), "markdown") == user.replace("SammoProbe", "{{ input }}")
    assert export_program(sentiment(), "markdown").startswith(
        "# Task\n\nClassify the sentiment. Write {{ label }} literally.\n\n# Examples\n\n"
        "Example 1:\nInput: I loved it.\nOutput: positive\n\n"
        "Example 2:\nInput: Boring.\nOutput: negative\n\n# Review\n\nInput: {{ input }}"
    )


def test_jinja_export_escapes_literal_jinja() -> None:
    template = export_program(sentiment(), "jinja")
    assert "Write {{ '{' }}{ label }} literally." in template
    assert template.count("{{ input }}") == 1


@pytest.mark.parametrize(
    "program",
    [
        sentiment(),
        sentiment(n=1, selection="random", seed=4),
        Output(GenerateText(MetaPrompt([Template("Q: {{ input }}!"), "{% not jinja %}"], "xml"))),
        Output(
            GenerateText(MetaPrompt([Section("T", ["a\rb {#", InputData()])], "plain", "markdown"))
        ),
    ],
    ids=["plain", "random-examples", "xml-template", "carriage-return"],
)
def test_jinja_export_renders_the_exact_prompt(program: Output) -> None:
    template = export_program(program, "jinja")
    for value, (user,) in zip(INPUTS, prompts(program, INPUTS), strict=True):
        assert render(template, value) == user


def test_jinja_export_with_the_json_data_format() -> None:
    program = Output(GenerateText(MetaPrompt([InputData()], data_format="json")))
    template = export_program(program, "jinja")
    values = ["hello", "{{ evil }}", "ünï"]  # json escapes quotes and newlines: not these
    for value, (user,) in zip(values, prompts(program, values), strict=True):
        assert render(template, value) == user


def test_jinja_export_of_dict_inputs() -> None:
    program = Output(
        GenerateText(
            MetaPrompt(
                [Template("Q: {{ input.question }}"), InputData(), Template("{{ input['x-y'] }}")]
            )
        )
    )
    fields = ["question", "items", "x-y"]
    template = export_program(program, "jinja", input_fields=fields)
    assert "{{ input.question }}" in template and '{{ input["items"] }}' in template
    values = [
        {"question": "2+2?", "items": "{{ a }}", "x-y": "z"},
        {"question": "Why", "items": "none", "x-y": "1"},
    ]
    for value, (user,) in zip(values, prompts(program, values), strict=True):
        assert render(template, value) == user


def test_jinja_export_of_a_parsed_file() -> None:
    program = Output(GenerateText(parse_markdown("# Task\n\nAnswer {{ question }}.")), parser="raw")
    template = export_program(program, "jinja", input_fields=["question"])
    assert template == "# Task\n\nAnswer {{ input.question }}."


def test_jinja_export_keeps_a_final_newline() -> None:
    program = Output(GenerateText(MetaPrompt([Template("x")]), system="Be kind.\n"))
    messages = json.loads(export_program(program, "messages"))
    assert render(messages[0]["content"], "") == "Be kind.\n"


def test_constants_are_rendered_in() -> None:
    program = Output(GenerateText(MetaPrompt([Template("{{ constants.task }} {{ input }}")])))
    template = export_program(program, "jinja", constants={"task": "Add:"})
    assert template == "Add: {{ input }}"


ALPHABET = string.ascii_letters + string.digits + " {}%#-!'\"&<>\\"


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=ALPHABET + "\n", min_size=1, max_size=30))
def test_jinja_export_property(value: str) -> None:
    # Inputs the plain formats insert verbatim: stripped, with no line reading as a heading.
    value = "\n".join(line.strip() for line in value.split("\n")).strip()
    if not value or any(line.startswith(("#", "\\")) for line in value.split("\n")):
        value = "x" + value.replace("\n", " ")
    program = sentiment()
    template = export_program(program, "jinja")
    ((user,),) = prompts(program, [value])
    assert render(template, value) == user


def test_json_export_loads_back_equal() -> None:
    program = Output(
        GenerateText(
            MetaPrompt([Section("Examples", [Examples(EXAMPLES, n=1, selection="knn")])]),
            system="Be brief.",
            temperature=0.7,
            max_tokens=5,
        ),
        inputs_per_call=4,
    )
    text = export_program(program, "json")
    assert loads(text) == program
    assert json.loads(text)["sammo_core_program"] == 1


def test_messages_export() -> None:
    program = Output(GenerateText(MetaPrompt([Template("Review: {{ input }}")]), system="Be {%"))
    data = json.loads(export_program(program, "messages"))
    assert [m["role"] for m in data] == ["system", "user"]
    assert data[1]["content"] == "Review: {{ input }}"
    for value, expected in zip(INPUTS, prompts(program, INPUTS), strict=True):
        assert [render(m["content"], value) for m in data] == expected
    no_system = json.loads(export_program(sentiment(), "messages"))
    assert [m["role"] for m in no_system] == ["user"]


def test_system_message_needs_messages_or_json() -> None:
    program = Output(GenerateText(MetaPrompt([InputData()]), system="Be brief."))
    for format in ("markdown", "jinja"):
        with pytest.raises(ConfigError, match=r"system message.*'messages' or 'json'"):
            export_program(program, format)  # type: ignore[arg-type]


@pytest.mark.parametrize("format", ["markdown", "jinja", "messages"])
def test_dynamic_programs_only_export_as_json(format: str) -> None:
    with pytest.raises(ConfigError, match=r"selection='knn'.*'json'"):
        export_program(sentiment(n=1, selection="knn"), format)  # type: ignore[arg-type]
    batched = Output(GenerateText(MetaPrompt([InputData()])), inputs_per_call=2)
    with pytest.raises(ConfigError, match=r"inputs_per_call=2.*'json'"):
        export_program(batched, format)  # type: ignore[arg-type]
    nested = Output(GenerateText(MetaPrompt([GenerateText(MetaPrompt(["Hi."])), InputData()])))
    with pytest.raises(ConfigError, match="2 LLM calls"):
        export_program(nested, format)  # type: ignore[arg-type]
    transformed = Output(GenerateText(MetaPrompt([Template("{{ input | upper }}")])))
    with pytest.raises(ConfigError, match="transforms its input"):
        export_program(transformed, format)  # type: ignore[arg-type]
    assert loads(export_program(sentiment(n=1, selection="knn"), "json")) == sentiment(
        n=1, selection="knn"
    )


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="unknown export format 'yaml'"):
        export_program(sentiment(), "yaml")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Output program"):
        export_program(MetaPrompt(["x"]), "jinja")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Output program"):
        export_program(MetaPrompt(["x"]), "json")  # type: ignore[arg-type]


def test_sentinel_that_occurs_in_the_program() -> None:
    program = Output(GenerateText(MetaPrompt(["SammoInputSentinel is text.", InputData()])))
    assert export_program(program, "markdown").startswith("SammoInputSentinel is text.")
    assert program_template(program, escape=False)[0][1].count("{{ input }}") == 1


# -- manifests -------------------------------------------------------------------------------

SCORES = {
    "accuracy": {
        "name": "accuracy",
        "value": 0.8,
        "ci_low": 0.7,
        "ci_high": 0.9,
        "per_item": [1.0, 0.0],
        "n": 2,
    },
    "calls": {"value": 12.0, "ci_low": None, "ci_high": None, "n": 2},
}
CREATED = datetime(2024, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))


def manifest(program: Output, **kwargs: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "scores": SCORES,
        "data_hash": "d41d8cd98f00b204",
        "budget_used": {"calls": 40, "prompt_tokens": 1200, "cost_usd": 0.01},
        "created": CREATED,
    }
    return build_manifest(program, **(fields | kwargs))


def test_manifest_fields() -> None:
    program = sentiment()
    data = manifest(program)
    try:
        version = importlib.metadata.version("sammo-core")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    assert data == {
        "format_version": 1,
        "sammo_core_version": version,
        "program_hash": compile(program).hash,
        "model": "gpt-4o-mini",
        "scores": {
            "accuracy": {"value": 0.8, "ci_low": 0.7, "ci_high": 0.9, "n": 2},
            "calls": {"value": 12.0, "ci_low": None, "ci_high": None, "n": 2},
        },
        "data_hash": "d41d8cd98f00b204",
        "budget_used": {"calls": 40, "prompt_tokens": 1200, "cost_usd": 0.01},
        "created": "2024-05-01T12:30:00+00:00",
        "export_format": None,
        "objective": None,
        "input_field": None,
        "output_field": None,
        "input_fields": None,
        "call": {"mode": "chat", "stop": [], "temperature": 0.0, "max_tokens": None, "seed": 0},
        "soft_prompt": None,
    }
    assert Manifest.from_dict(data).to_dict() == data
    assert json.loads(json.dumps(data)) == data


def test_manifest_defaults_to_now_in_utc() -> None:
    before = datetime.now(UTC)
    created = datetime.fromisoformat(manifest(sentiment(), created=None)["created"])
    assert created.utcoffset() == timedelta(0) and before <= created <= datetime.now(UTC)


def test_manifest_validation() -> None:
    program = sentiment()
    with pytest.raises(ConfigError, match="timezone-aware"):
        manifest(program, created=datetime(2024, 5, 1))
    with pytest.raises(ConfigError, match="finite number 'value'"):
        manifest(program, scores={"accuracy": {"value": "high"}})
    with pytest.raises(ConfigError, match="unknown keys"):
        manifest(program, scores={"accuracy": {"value": 1.0, "stderr": 0.1}})
    with pytest.raises(ConfigError, match="budget_used"):
        manifest(program, budget_used={"calls": "many"})
    with pytest.raises(ConfigError, match="unknown export format"):
        manifest(program, export_format="yaml")
    with pytest.raises(ConfigError, match="unknown manifest keys: extra"):
        Manifest.from_dict({**manifest(program), "extra": 1})
    with pytest.raises(ConfigError, match="missing keys: model"):
        Manifest.from_dict({k: v for k, v in manifest(program).items() if k != "model"})
    with pytest.raises(ConfigError, match="format version 2"):
        Manifest.from_dict({**manifest(program), "format_version": 2})
    with pytest.raises(ConfigError, match="UTC offset"):
        Manifest.from_dict({**manifest(program), "created": "2024-05-01T12:00:00"})


# -- files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("format", EXPORT_FORMATS)
def test_write_export(tmp_path: Path, format: str) -> None:
    program = sentiment()
    data = manifest(program)
    out = tmp_path / "best"
    export_path, manifest_path = write_export(program, out, format, data)  # type: ignore[arg-type]
    assert (
        export_path == out / EXPORT_FILES[format] and manifest_path == out / MANIFEST_FILES[format]
    )
    text = export_program(program, format)  # type: ignore[arg-type]
    expected = text if format == "jinja" else text + "\n"
    assert export_path.read_text(encoding="utf-8") == expected
    written = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert written == {**data, "export_format": format}
    assert data["export_format"] is None  # the argument is left alone
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [EXPORT_FILES[format], MANIFEST_FILES[format]]
    )
    if format == "json":
        assert loads(export_path.read_text(encoding="utf-8")) == program


def test_write_export_overwrites_and_checks_the_hash(tmp_path: Path) -> None:
    program = sentiment()
    write_export(program, tmp_path, "markdown", manifest(program))
    other = sentiment(n=1)
    write_export(other, tmp_path, "markdown", manifest(other))
    assert "Boring." not in (tmp_path / "prompt.md").read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="describes program"):
        write_export(program, tmp_path, "markdown", manifest(other))


def test_write_export_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program = sentiment()
    write_export(program, tmp_path, "jinja", manifest(program))
    before = (tmp_path / "prompt.jinja").read_text(encoding="utf-8")

    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    other = sentiment(n=1)
    with pytest.raises(OSError, match="disk full"):
        write_export(other, tmp_path, "jinja", manifest(other))
    assert (tmp_path / "prompt.jinja").read_text(encoding="utf-8") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest-jinja.json", "prompt.jinja"]


def test_exports_of_several_formats_keep_their_own_manifests(tmp_path: Path) -> None:
    program = sentiment()
    for fmt in ("markdown", "json"):
        write_export(program, tmp_path, fmt, manifest(program))  # type: ignore[arg-type]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["manifest-json.json", "manifest-markdown.json", "program.json", "prompt.md"]
    formats = [
        json.loads((tmp_path / f"manifest-{fmt}.json").read_text())["export_format"]
        for fmt in ("markdown", "json")
    ]
    assert formats == ["markdown", "json"]  # the second export did not overwrite the first


def test_a_completion_mode_export_says_how_to_call_the_model(tmp_path: Path) -> None:
    """A template of a base-model prompt is useless without its mode and stops: the manifest
    of every format carries them."""
    call = GenerateText(
        MetaPrompt(
            [Section("Task", ["Answer yes or no."]), Template("Input: {{ input }}\nOutput:")]
        ),
        mode="completion",
        stop=["\nInput:", "\n\n"],
        max_tokens=16,
    )
    program = Output(call)
    for fmt in ("jinja", "markdown", "messages", "json"):
        write_export(program, tmp_path, fmt, manifest(program))  # type: ignore[arg-type]
        written = json.loads((tmp_path / f"manifest-{fmt}.json").read_text())
        assert written["call"]["mode"] == "completion", fmt
        assert written["call"]["stop"] == ["\nInput:", "\n\n"], fmt
        assert written["call"]["max_tokens"] == 16
    with pytest.raises(ConfigError, match="manifest call must map some of mode"):
        Manifest.from_dict({**manifest(program), "call": {"logprobs": True}})


def test_exported_files_are_readable_by_others(tmp_path: Path) -> None:
    program = sentiment()
    old = os.umask(0o022)
    try:
        paths = write_export(program, tmp_path, "markdown", manifest(program))
    finally:
        os.umask(old)
    assert [p.stat().st_mode & 0o777 for p in paths] == [0o644, 0o644]  # not mkstemp's 0o600


def test_manifest_carries_the_objective_and_fields() -> None:
    program = sentiment()
    data = manifest(program, objective="label_accuracy:yes,no", input_fields=["q", "ctx"])
    assert data["objective"] == "label_accuracy:yes,no" and data["input_fields"] == ["q", "ctx"]
    assert Manifest.from_dict(data).to_dict() == data
    with pytest.raises(ConfigError, match="manifest objective must be a non-empty string"):
        Manifest.from_dict({**data, "objective": ""})
