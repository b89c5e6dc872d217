"""Selectors find nodes by id, type, attribute and CSS-like paths."""

from __future__ import annotations

import pyglove as pg
import pytest

from sammo_core import (
    ConfigError,
    GenerateText,
    InputData,
    MetaPrompt,
    Output,
    Paragraph,
    Section,
    find,
    find_one,
)


@pytest.fixture
def program() -> Output:
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", ["Classify the text.", Paragraph("Be brief.", id="brief")]),
                    Section(
                        "Rules",
                        [Section("Format", [Paragraph("Answer yes or no.")], id="fmt")],
                        id="rules",
                    ),
                    Section("Input", [InputData()]),
                ]
            )
        )
    )


def test_by_type_lists_all_in_document_order(program: Output) -> None:
    titles = [m.node.title for m in find(program, "Section")]
    assert titles == ["Task", "Rules", "Format", "Input"]


def test_by_id(program: Output) -> None:
    match = find_one(program, "#fmt")
    assert match.node.title == "Format"
    assert match.path == "child.prompt.children[1].children[0]"


def test_paths_work_with_pyglove_clone(program: Output) -> None:
    match = find_one(program, "#brief")
    edited = pg.clone(program, override={f"{match.path}.text": "Be very brief."})
    assert find_one(edited, "#brief").node.text == "Be very brief."
    assert find_one(program, "#brief").node.text == "Be brief.", "the original is untouched"


def test_child_vs_descendant(program: Output) -> None:
    assert [m.node.text for m in find(program, "#rules Paragraph")] == ["Answer yes or no."]
    assert find(program, "#rules > Paragraph") == []


def test_attribute_operators(program: Output) -> None:
    assert [m.node.title for m in find(program, "Section[title='Rules']")] == ["Rules"]
    assert [m.node.title for m in find(program, "Section[title^=F]")] == ["Format"]
    assert [m.node.text for m in find(program, "Paragraph[text*=brief]")] == ["Be brief."]


def test_base_class_and_star_and_union(program: Output) -> None:
    assert len(find(program, "Component")) == len(find(program, "*"))
    union = find(program, "InputData, #brief")
    assert [type(m.node).__name__ for m in union] == ["Paragraph", "InputData"]


def test_nth(program: Output) -> None:
    assert find_one(program, "Section:nth(2)").node.title == "Format"
    assert find_one(program, "MetaPrompt > Section:nth(2)").node.title == "Input"


@pytest.mark.parametrize("bad", ["", "Section >", "Section[title", "#", "Sec tion,,"])
def test_bad_selector_names_it(bad: str, program: Output) -> None:
    with pytest.raises(ConfigError) as info:
        find(program, bad)
    assert "selector" in str(info.value)


def test_find_one_reports_ambiguity(program: Output) -> None:
    with pytest.raises(ConfigError, match=r"matched 4 nodes"):
        find_one(program, "Section")
    with pytest.raises(ConfigError, match=r"matched 0 nodes"):
        find_one(program, "#nope")


def test_readme_selector_finds_paragraphs_written_as_strings() -> None:
    program = Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", ["Classify the sentiment.", "Answer in one word."]),
                    Section("Review", [InputData()]),
                ]
            )
        )
    )
    matches = find(program, "Section[title='Task'] > Paragraph")
    assert [(m.path, m.node.text) for m in matches] == [
        ("child.prompt.children[0].children[0]", "Classify the sentiment."),
        ("child.prompt.children[0].children[1]", "Answer in one word."),
    ]
    edited = pg.clone(program, override={f"{matches[1].path}.text": "Answer yes or no."})
    assert [m.node.text for m in find(edited, "Paragraph[text^='Answer']")] == ["Answer yes or no."]
