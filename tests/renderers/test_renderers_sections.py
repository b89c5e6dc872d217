"""Section formats: exact prompts, round trips over random documents, registry and exports."""

from __future__ import annotations

import ast
import doctest
import importlib
import pickle
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import renderers
from renderers import (
    SECTION_FORMATS,
    Block,
    JSONFormat,
    MarkdownFormat,
    PlainFormat,
    RenderError,
    SectionBlock,
    SectionFormat,
    Text,
    UnknownFormatError,
    XMLFormat,
    get_section_format,
    normalize,
)

FORMATS = sorted(SECTION_FORMATS)
PACKAGE = Path(renderers.__file__).parent

# Characters and fragments that stress each layout: headings, underlines, tags, entities, escapes.
ALPHABET = "ab Z9\n\t\r<>&\"';:#=-~^*+\\/[]`é\u2028"
FRAGMENTS = [
    "# ",
    "## h",
    "\n#\n",
    "\\#",
    "\n---\n",
    "\n===",
    "\\\\",
    "<section>",
    '<section title="x">',
    "</section>",
    "<SECTION ",
    "&amp;",
    "&lt;",
    "&amp;lt;section",
    "&#10;",
    "<b>",
    "\n\n",
    "  ",
]
texts = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(alphabet=ALPHABET, max_size=4)), max_size=6
).map("".join)


def _documents(titles: st.SearchStrategy[str | None]) -> st.SearchStrategy[list[Block]]:
    blocks = st.recursive(
        st.builds(Text, texts),
        lambda children: st.builds(SectionBlock, titles, st.lists(children, max_size=4).map(tuple)),
        max_leaves=12,
    )
    return st.lists(blocks, max_size=5)


documents = _documents(st.none() | texts)

DOC = [
    SectionBlock("Task", (Text("Classify the sentiment of the review."), Text("Be brief."))),
    SectionBlock(
        "Rules",
        (
            SectionBlock("Labels", (Text("positive\nnegative"),)),
            SectionBlock("Tone", (Text("Neutral."),)),
        ),
    ),
    SectionBlock(None, (Text("Review: I loved it."),)),
]

EXPECTED = {
    "markdown": """\
# Task

Classify the sentiment of the review.

Be brief.

# Rules

## Labels

positive
negative

## Tone

Neutral.

Review: I loved it.""",
    "plain": """\
Task
====

Classify the sentiment of the review.

Be brief.

Rules
=====

Labels
------

positive
negative

Tone
----

Neutral.

Review: I loved it.""",
    "xml": """\
<section title="Task">
Classify the sentiment of the review.

Be brief.
</section>

<section title="Rules">
<section title="Labels">
positive
negative
</section>
<section title="Tone">
Neutral.
</section>
</section>

Review: I loved it.""",
    "json": """\
[
  {
    "title": "Task",
    "content": [
      "Classify the sentiment of the review.\\n\\nBe brief."
    ]
  },
  {
    "title": "Rules",
    "content": [
      {
        "title": "Labels",
        "content": [
          "positive\\nnegative"
        ]
      },
      {
        "title": "Tone",
        "content": [
          "Neutral."
        ]
      }
    ]
  },
  "Review: I loved it."
]""",
}


# -- exact prompts ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FORMATS)
def test_exact_rendering_of_a_small_document(name: str) -> None:
    assert get_section_format(name).render(DOC) == EXPECTED[name]


@pytest.mark.parametrize("name", FORMATS)
def test_untitled_section_renders_only_its_children(name: str) -> None:
    fmt = get_section_format(name)
    assert fmt.render([SectionBlock(None, (Text("a"), Text("b")))]) == fmt.render([Text("a\n\nb")])


@pytest.mark.parametrize("name", FORMATS)
def test_empty_document_renders_and_parses(name: str) -> None:
    fmt = get_section_format(name)
    assert fmt.parse(fmt.render([])) == ()


def test_markdown_escapes_only_lines_that_read_as_headings() -> None:
    fmt = MarkdownFormat()
    doc = [Text("# not a heading\n#hashtag\n\\# escaped\n  # indented")]
    text = fmt.render(doc)
    assert text == "\\# not a heading\n#hashtag\n\\\\# escaped\n  # indented"
    assert fmt.parse(text) == tuple(doc)


def test_plain_escapes_only_lines_that_read_as_underlines() -> None:
    fmt = PlainFormat()
    doc = [Text("Title\n---\n- item\n=== x")]
    assert fmt.render(doc) == "Title\n\\---\n- item\n=== x"
    assert fmt.parse(fmt.render(doc)) == tuple(doc)


def test_plain_sections_deeper_than_six_levels_come_back_as_siblings() -> None:
    fmt = PlainFormat()
    deep: Block = Text("bottom")
    for level in range(8, 0, -1):
        deep = SectionBlock(f"L{level}", (deep,))
    six = fmt.normalize([deep])
    level5 = six[0]
    for _ in range(4):
        assert isinstance(level5, SectionBlock)
        level5 = level5.children[-1]
    assert isinstance(level5, SectionBlock)
    assert level5.title == "L5"
    assert level5.children == (
        SectionBlock("L6", ()),
        SectionBlock("L7", ()),
        SectionBlock("L8", (Text("bottom"),)),
    )
    assert fmt.parse(fmt.render([deep])) == six
    assert "+" * 3 in fmt.render([deep])


def test_xml_titles_round_trip_with_escaping() -> None:
    fmt = XMLFormat()
    title = 'a "quoted" <tag> & \n\ttitle '
    text = fmt.render([SectionBlock(title, (Text("x"),))])
    assert text.startswith(
        '<section title="a &quot;quoted&quot; &lt;tag&gt; &amp; &#10;&#9;title ">'
    )
    assert fmt.parse(text) == (SectionBlock(title, (Text("x"),)),)


def test_xml_leaves_nested_markup_readable() -> None:
    data = '<example id="1">\n<input>a &lt;b> &amp; c</input>\n</example>'
    text = XMLFormat().render([SectionBlock("Examples", (Text(data),))])
    assert data in text
    assert XMLFormat().parse(text) == (SectionBlock("Examples", (Text(data),)),)


def test_xml_escapes_section_tags_inside_text() -> None:
    fmt = XMLFormat()
    doc = [SectionBlock("T", (Text("<section title='x'> and </Section> and &lt;section"),))]
    text = fmt.render(doc)
    assert "&lt;section title='x'> and &lt;/Section> and &amp;lt;section" in text
    assert fmt.parse(text) == tuple(doc)


def test_xml_parse_tolerates_unbalanced_tags() -> None:
    parsed = XMLFormat().parse('a</section><section title="T">b<section title="U">c')
    assert parsed == (Text("a"), SectionBlock("T", (Text("b"), SectionBlock("U", (Text("c"),)))))


def test_json_parse_rejects_malformed_text() -> None:
    with pytest.raises(RenderError, match="not valid JSON"):
        JSONFormat().parse("[")
    with pytest.raises(RenderError, match="'content' list"):
        JSONFormat().parse('[{"title": 3}]')


def test_markdown_reads_text_after_a_section_as_part_of_it() -> None:
    doc: list[Block] = [SectionBlock("A", (SectionBlock("B", (Text("x"),)),)), Text("y")]
    expected = (SectionBlock("A", (SectionBlock("B", (Text("x\n\ny"),)),)),)
    assert MarkdownFormat().normalize(doc) == expected
    assert MarkdownFormat().parse(MarkdownFormat().render(doc)) == expected


def test_normalize_defines_the_canonical_form() -> None:
    doc: list[Block] = [
        Text("  a "),
        Text(""),
        SectionBlock(None, (Text("b"), SectionBlock("T", ()))),
    ]
    assert normalize(doc) == (Text("a\n\nb"), SectionBlock("T", ()))
    assert MarkdownFormat().normalize(
        [SectionBlock(" x \n y ", ()), SectionBlock("  ", (Text("z"),))]
    ) == (SectionBlock("x y", (Text("z"),)),)


def test_blocks_validate_their_fields() -> None:
    with pytest.raises(TypeError, match="Text or SectionBlock"):
        SectionBlock("T", ("not a block",))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="str"):
        Text(3)  # type: ignore[arg-type]
    with pytest.raises(RenderError, match="Text and SectionBlock"):
        normalize(["x"])  # type: ignore[list-item]
    assert SectionBlock("T", [Text("a")]).children == (Text("a"),)  # type: ignore[arg-type]


# -- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FORMATS)
@settings(max_examples=100, deadline=None)
@given(doc=documents)
def test_parse_inverts_render(name: str, doc: list[Block]) -> None:
    fmt = get_section_format(name)
    text = fmt.render(doc)
    assert fmt.parse(text) == fmt.normalize(doc)
    assert fmt.normalize(fmt.normalize(doc)) == fmt.normalize(doc)
    assert fmt.render(fmt.normalize(doc)) == text


@pytest.mark.parametrize("name", FORMATS)
@settings(max_examples=100, deadline=None)
@given(text=texts)
def test_parse_of_foreign_text_is_canonical(name: str, text: str) -> None:
    fmt = get_section_format(name)
    if name == "json":
        return
    parsed = fmt.parse(text)
    assert fmt.normalize(parsed) == parsed
    assert fmt.parse(fmt.render(parsed)) == parsed


# -- registry and package -------------------------------------------------------------------------


def test_registry_names_and_instances() -> None:
    assert set(SECTION_FORMATS) == {"markdown", "xml", "json", "plain"}
    for name, cls in SECTION_FORMATS.items():
        fmt = get_section_format(name)
        assert isinstance(fmt, cls)
        assert isinstance(fmt, SectionFormat)
        assert fmt.name == name
        assert fmt == cls()
        assert hash(fmt) == hash(cls())
        assert repr(fmt) == f"{cls.__name__}()"
    with pytest.raises(TypeError):
        SECTION_FORMATS["yaml"] = JSONFormat  # type: ignore[index]


def test_unknown_format_names_the_bad_name_and_the_valid_ones() -> None:
    with pytest.raises(UnknownFormatError) as info:
        get_section_format("mardown")
    message = str(info.value)
    assert "'mardown'" in message
    assert "json, markdown, plain, xml" in message
    assert "did you mean 'markdown'" in message
    assert isinstance(info.value, RenderError)
    assert isinstance(info.value, ValueError)
    copy = pickle.loads(pickle.dumps(info.value))
    assert str(copy) == message


def test_exports_are_sorted_and_importable() -> None:
    assert renderers.__all__ == sorted(renderers.__all__, key=lambda n: (not n.isupper(), n))
    for name in renderers.__all__:
        assert getattr(renderers, name) is not None


def test_package_imports_only_the_standard_library() -> None:
    allowed = set(sys.stdlib_module_names) | {"renderers", "orjson"}
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                roots = [(node.module or "").split(".")[0]] if node.level == 0 else []
            else:
                continue
            assert set(roots) <= allowed, f"{path.name} imports {roots}"


@pytest.mark.parametrize("module", sorted(p.stem for p in PACKAGE.glob("*.py")))
def test_docstring_examples_run(module: str) -> None:
    name = "renderers" if module == "__init__" else f"renderers.{module}"
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
