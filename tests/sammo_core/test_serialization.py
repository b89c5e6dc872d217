"""Programs serialize to JSON and back exactly, and loading never runs code."""

from __future__ import annotations

import orjson
import pytest

from sammo_core import (
    DataTable,
    Examples,
    GenerateText,
    InputData,
    MetaPrompt,
    Output,
    Paragraph,
    Section,
    SerializationError,
    Template,
    compile,
    dumps,
    loads,
)


def make_program() -> Output:
    examples = DataTable(["good film", "awful plot"], ["positive", "negative"])
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", ["Classify sentiment."], id="task"),
                    Section("Examples", [Examples(examples, n=2, selection="random", seed=3)]),
                    Template("Text: {{ input }}"),
                    InputData(data_format="json"),
                ],
                section_format="xml",
                data_format="markdown",
            ),
            system="You are careful.",
            temperature=0.5,
            max_tokens=20,
            seed=7,
        ),
        parser="regex:(positive|negative)",
        inputs_per_call=3,
    )


def test_round_trip_is_exact() -> None:
    program = make_program()
    text = dumps(program)
    loaded = loads(text)
    assert loaded == program
    assert dumps(loaded) == text
    assert compile(loaded).hash == compile(program).hash


def test_file_is_plain_json_with_version() -> None:
    data = orjson.loads(dumps(make_program()))
    assert data["sammo_core_program"] == 1
    assert data["program"]["_type"].endswith("Output")


@pytest.mark.parametrize(
    "evil",
    [
        {"_type": "os.system", "command": "echo pwned"},
        {"_type": "builtins.eval", "x": "1"},
        {"_type": "subprocess.Popen", "args": ["true"]},
    ],
)
def test_refuses_foreign_types(evil: dict[str, object]) -> None:
    doc = orjson.loads(dumps(make_program()))
    doc["program"]["child"]["system"] = evil
    with pytest.raises(SerializationError, match="refusing to load type"):
        loads(orjson.dumps(doc))


def test_refuses_non_program_json() -> None:
    with pytest.raises(SerializationError, match="not valid JSON"):
        loads("{not json")
    with pytest.raises(SerializationError, match="not a sammo-core program file"):
        loads('{"hello": 1}')
    with pytest.raises(SerializationError, match="version 99"):
        loads('{"sammo_core_program": 99, "program": {}}')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"sammo_core_program": 1, "program": {"_type": null}}', "'_type' at <root> is null"),
        ('{"sammo_core_program": 1, "program": {"_type": 3}}', "'_type' at <root> is 3"),
        (
            '{"sammo_core_program": 1, "program": ' + "[" * 1000 + "]" * 1000 + "}",
            "nested more than 200 levels deep at " + "[0]" * 201,
        ),
    ],
)
def test_malformed_program_json_is_a_serialization_error(text: str, message: str) -> None:
    with pytest.raises(SerializationError) as caught:
        loads(text)
    assert message in str(caught.value)


def test_programs_saved_with_plain_strings_still_load() -> None:
    # Files written before strings became Paragraph nodes hold bare strings as children.
    old = {
        "sammo_core_program": 1,
        "program": {
            "_type": "sammo_core.components.Output",
            "child": {
                "_type": "sammo_core.components.GenerateText",
                "system": "Be terse.",
                "prompt": {
                    "_type": "sammo_core.components.MetaPrompt",
                    "children": [
                        {"_type": "sammo_core.components.Section", "title": "T", "children": ["x"]}
                    ],
                },
            },
        },
    }
    loaded = loads(orjson.dumps(old))
    expected = Output(
        GenerateText(MetaPrompt([Section("T", [Paragraph("x")])]), system=Paragraph("Be terse."))
    )
    assert loaded == expected
    assert compile(loaded).hash == compile(expected).hash
