"""Prompt files: exact trees and prompts for real-looking files, round trips over random ones."""

from __future__ import annotations

import asyncio
import dataclasses
import doctest
import re
import string
from pathlib import Path

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renderers import SectionBlock, Text, XMLFormat
from sammo_core import (
    ConfigError,
    DataTable,
    GenerateText,
    InputData,
    MetaPrompt,
    Output,
    Paragraph,
    ScriptedRunner,
    Section,
    Template,
    TemplateError,
    compile,
    find,
    prompt_files,
)
from sammo_core.prompt_files import (
    escape_jinja,
    normalize_whitespace,
    parse_markdown,
    parse_prompt_file,
    parse_template,
    parse_xml,
    render_prompt,
    render_request,
)


def rendered(meta: MetaPrompt, value: object) -> str:
    """The prompt the parsed program sends for ``value``, through the real run path."""
    runner = ScriptedRunner(default="x")
    compile(Output(GenerateText(meta), parser="raw")).run_sync(DataTable([value]), runner)
    assert runner.calls == 1
    return runner.prompts[0]


def same(a: str, b: str) -> bool:
    return normalize_whitespace(a) == normalize_whitespace(b)


def input_rendering(value: object, section_format: str) -> str:
    """How InputData writes ``value`` (data mode), whatever the data format's current layout."""
    return rendered(MetaPrompt([InputData()], section_format), value)


def test_doctests() -> None:
    result = doctest.testmod(prompt_files, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 10 and result.failed == 0


# -- markdown: fixed files -------------------------------------------------------------------

SENTIMENT_MD = """\
You are a careful annotator.

# Task

Classify the sentiment of a movie review as **positive** or **negative**.

## Rules
- Answer with one word.
- Do not explain.
  1. Not even briefly.

## Examples

```text
Input: I loved it.
Output: positive

Input: Boring.
Output: negative
```

Input: What a film!
Output: positive

# Review

Review: {{ input }} (keep {{ and }} as they are)
"""


def test_markdown_tree_of_a_real_prompt() -> None:
    meta = parse_markdown(SENTIMENT_MD)
    assert meta.section_format == "markdown"
    assert meta.children[0] == Paragraph("You are a careful annotator.")
    task, review = meta.children[1:]
    assert task.title == "Task" and review.title == "Review"
    rules, examples = task.children[1:]
    assert rules.children == [
        Paragraph("- Answer with one word.\n- Do not explain.\n  1. Not even briefly.")
    ]
    assert examples.children[0].text.startswith("```text\nInput: I loved it.")
    assert "\n\nInput: Boring." in examples.children[0].text  # the fence keeps its blank line
    assert examples.children[1] == Paragraph("Input: What a film!\nOutput: positive")
    (template,) = review.children
    assert isinstance(template, Template)
    assert template.text == "Review: {{ input }} (keep {{ '{' }}{ and }} as they are)"


def test_markdown_prompt_exactly() -> None:
    value = "Great {{ acting }}, {% weak %} plot"
    assert rendered(parse_markdown(SENTIMENT_MD), value) == (
        "You are a careful annotator.\n\n# Task\n\n"
        "Classify the sentiment of a movie review as **positive** or **negative**.\n\n"
        "## Rules\n\n- Answer with one word.\n- Do not explain.\n  1. Not even briefly.\n\n"
        "## Examples\n\n```text\nInput: I loved it.\nOutput: positive\n\nInput: Boring.\n"
        "Output: negative\n```\n\nInput: What a film!\nOutput: positive\n\n# Review\n\n"
        f"Review: {value} (keep {{{{ and }}}} as they are)"
    )
    assert same(
        rendered(parse_markdown(SENTIMENT_MD), value), SENTIMENT_MD.replace("{{ input }}", value)
    )


def test_lone_placeholder_is_a_template_or_input_data() -> None:
    text = "# Input\n\n{{ input }}"
    (section,) = parse_markdown(text).children
    assert section.children == [Template("{{ input }}")]
    assert rendered(parse_markdown(text), "hi") == "# Input\n\nhi"
    (section,) = parse_markdown(text, input_node="data").children
    assert section.children == [InputData()]
    assert rendered(parse_markdown(text, input_node="data"), "hi") == (
        "# Input\n\n" + input_rendering("hi", "markdown")
    )
    with pytest.raises(ConfigError, match="input_node"):
        parse_markdown(text, input_node="both")  # type: ignore[arg-type]


def test_heading_levels_follow_nesting() -> None:
    text = "## Task\n\nDo it.\n\n#### Detail\n\nCarefully.\n\n# Next\n\nThen."
    meta = parse_markdown(text)
    assert [s.title for s in meta.children] == ["Task", "Next"]
    assert meta.children[0].children[1].title == "Detail"
    assert rendered(meta, "") == "# Task\n\nDo it.\n\n## Detail\n\nCarefully.\n\n# Next\n\nThen."


def test_heading_whitespace_and_headings_without_blank_lines() -> None:
    meta = parse_markdown("#   Task   with  space \nDo it.\n## Sub\nMore.")
    assert rendered(meta, "") == "# Task with space\n\nDo it.\n\n## Sub\n\nMore."


def test_escaped_heading_lines_round_trip_exactly() -> None:
    text = "# Task\n\n\\# not a heading\n\\\\## nor this\n#hashtag stays"
    meta = parse_markdown(text)
    assert meta.children[0].children == [
        Paragraph("# not a heading\n\\## nor this\n#hashtag stays")
    ]
    assert rendered(meta, "") == text


def test_fenced_heading_lines_get_the_markdown_escape() -> None:
    text = "```python\n# a comment\n\nx = 1\n```"
    assert parse_markdown(text).children == [Paragraph(text)]
    assert rendered(parse_markdown(text), "") == "```python\n\\# a comment\n\nx = 1\n```"


def test_unclosed_fence_runs_to_the_end() -> None:
    text = "Intro.\n\n~~~\ncode\n\n# not a heading"
    assert parse_markdown(text).children == [
        Paragraph("Intro."),
        Paragraph("~~~\ncode\n\n# not a heading"),
    ]


def test_placeholder_in_a_heading_is_refused() -> None:
    with pytest.raises(ConfigError, match="section titles are static"):
        parse_markdown("# About {{ topic }}\n\nText.")


def test_field_placeholders() -> None:
    single = parse_markdown("Question: {{ question }}")
    assert rendered(single, {"question": "2+2?"}) == "Question: 2+2?"
    assert rendered(single, "2+2?") == "Question: 2+2?"  # one field: a string input is used whole
    double = parse_markdown("Q: {{ question }}\n\nContext: {{ context }}")
    assert rendered(double, {"question": "Why?", "context": "Sky."}) == "Q: Why?\n\nContext: Sky."
    with pytest.raises(TemplateError):
        rendered(double, "just a string")


def test_constants_placeholder_keeps_its_template_meaning() -> None:
    meta = parse_markdown("Task: {{ constants }}")
    assert meta.children == [Template("Task: {{ constants }}")]


def test_windows_newlines() -> None:
    assert rendered(parse_markdown("# A\r\n\r\nText\r\nmore"), "") == "# A\n\nText\nmore"


# -- xml: fixed files ------------------------------------------------------------------------

ANTHROPIC_XML = """\
You are a helpful assistant.

<instructions>
Classify the review as positive or negative.
Use <b>one</b> word & nothing else.
</instructions>
<examples>
<example>
Input: I loved it.
Output: positive
</example>
<example id="2">Boring. -> negative</example>
</examples>
<input>{{input}}</input>
"""


def test_xml_tree_and_prompt() -> None:
    meta = parse_xml(ANTHROPIC_XML)
    assert meta.section_format == "xml"
    assert [c.text if isinstance(c, Paragraph) else c.title for c in meta.children] == [
        "You are a helpful assistant.",
        "instructions",
        "examples",
        "input",
    ]
    assert meta.children[2].children[1] == Paragraph(
        '<example id="2">Boring. -> negative</example>'
    )
    assert rendered(meta, "A & B") == (
        "You are a helpful assistant.\n\n"
        '<section title="instructions">\nClassify the review as positive or negative.\n'
        "Use <b>one</b> word & nothing else.\n</section>\n\n"
        '<section title="examples">\n<section title="example">\nInput: I loved it.\n'
        'Output: positive\n</section>\n<example id="2">Boring. -> negative</example>\n'
        "</section>\n\n"
        '<section title="input">\nA & B\n</section>'
    )


def test_xml_section_format_output_parses_back_exactly() -> None:
    doc = [
        SectionBlock('Say "hi" & <go>', (Text("a < b &lt;section x"),)),
        SectionBlock("Empty"),
        Text("tail"),
    ]
    text = XMLFormat().render(doc)
    assert "&amp;lt;section" in text
    meta = parse_xml(text)
    assert meta.children[0].title == 'Say "hi" & <go>'
    assert meta.children[0].children == [Paragraph("a < b &lt;section x")]
    assert rendered(meta, "") == text


def test_xml_inline_unclosed_and_attribute_elements_stay_text() -> None:
    text = "Say <b>hi</b> now.\n<br>\n<note kind='x'>\nkeep\n</note>\n<open>\nnever closed"
    meta = parse_xml(text)
    assert not find(meta, "Section")
    assert same(rendered(meta, ""), text)


def test_xml_nested_inline_elements() -> None:
    meta = parse_xml("<a><b>x</b></a>")
    assert meta.children == [Section("a", [Section("b", ["x"])])]


def test_xml_lone_placeholder_in_data_mode() -> None:
    meta = parse_xml("<input>\n{{ input }}\n</input>", input_node="data")
    assert meta.children == [Section("input", [InputData()])]


# -- templates -------------------------------------------------------------------------------

FEW_SHOT_J2 = """\
# Task

Answer the question about {{ topic }}.

{% for ex in examples %}
Q: {{ ex.q }}

A: {{ ex.a }}
{% endfor %}

# Question

{{ question | trim }}

{#- the answer cue follows -#}

Answer:
"""


def test_template_blocks_span_paragraphs() -> None:
    meta = parse_template(FEW_SHOT_J2)
    task, _ = meta.children
    assert len(task.children) == 2 and "{% endfor %}" in task.children[1].text
    value = {
        "topic": "math",
        "examples": [{"q": "1+1", "a": "2"}, {"q": "2+2", "a": "4"}],
        "question": "  3+3  ",
    }
    prompt = rendered(meta, value)
    assert prompt == (
        "# Task\n\nAnswer the question about math.\n\nQ: 1+1\n\nA: 2\n\nQ: 2+2\n\nA: 4\n\n"
        "# Question\n\n3+3Answer:"
    )
    assert same(prompt, jinja2.Template(FEW_SHOT_J2).render(**value))


def test_template_single_variable_takes_a_string_input() -> None:
    meta = parse_template("Translate: {{ text | upper }}")
    assert rendered(meta, "hello") == "Translate: HELLO"
    assert rendered(meta, {"text": "hi"}) == "Translate: HI"


def test_template_lone_input_and_static_paragraphs() -> None:
    meta = parse_template("Plain {text}.\n\n{{ input }}", input_node="data")
    assert meta.children == [Paragraph("Plain {text}."), InputData()]


def test_template_that_defines_names_is_one_template() -> None:
    text = "{% set greeting = 'Hi' %}# Hello\n\n{{ greeting }} {{ name }}"
    meta = parse_template(text)
    assert meta.section_format == "xml" and len(meta.children) == 1
    assert rendered(meta, "Bob") == "# Hello\n\nHi Bob"


def test_template_errors() -> None:
    with pytest.raises(TemplateError, match="line 2"):
        parse_template("fine\n{% if %}")
    with pytest.raises(ConfigError, match="inline"):
        parse_template("{% include 'other.j2' %}")
    with pytest.raises(ConfigError, match="structure"):
        parse_template("x", structure="yaml")  # type: ignore[arg-type]


def test_xml_template_keeps_loops_whole() -> None:
    text = (
        "<task>\nDo {{ what }}.\n</task>\n"
        "{% for x in input.items_ %}\n<item>{{ x }}</item>\n{% endfor %}\n"
        "<input>\n{{ input.q }}\n</input>"
    )
    meta = parse_template(text, structure="xml")
    assert [getattr(c, "title", None) for c in meta.children] == ["task", None, "input"]
    assert rendered(meta, {"what": "it", "items_": [1, 2], "q": "Q?"}) == (
        '<section title="task">\nDo it.\n</section>\n\n<item>1</item>\n\n<item>2</item>\n\n'
        '<section title="input">\nQ?\n</section>'
    )


def test_template_whitespace_control_merges_paragraphs() -> None:
    meta = parse_template("a {{ x -}}\n\nb\n\n{{- y }} c")
    assert len(meta.children) == 1
    assert rendered(meta, {"x": 1, "y": 2}) == "a 1b2 c"


# -- files and rendering ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "section_format"),
    [
        ("prompt.md", "# T\n\nHi {{ input }}", "markdown"),
        ("prompt.markdown", "# T\n\nHi {{ input }}", "markdown"),
        ("prompt.txt", "Hi {{ input }}", "markdown"),
        ("prompt.xml", "<t>\nHi {{ input }}\n</t>", "xml"),
        ("prompt.j2", "# T\n\n{% if input %}Hi {{ input }}{% endif %}", "markdown"),
        ("prompt.JINJA", "Hi {{ input }}", "markdown"),
        ("prompt.jinja2", "Hi {{ input }}", "markdown"),
        ("prompt.xml.j2", "<t>\n{% if input %}Hi {{ input }}{% endif %}\n</t>", "xml"),
    ],
)
def test_parse_prompt_file_by_suffix(
    tmp_path: Path, name: str, text: str, section_format: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    program = parse_prompt_file(path)
    assert isinstance(program, Output) and program.parser == "raw"
    assert program.child.prompt.section_format == section_format
    assert "Hi Ada" in rendered(program.child.prompt, "Ada")


def test_parse_prompt_file_format_override_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "prompt.prompt"
    path.write_text("<t>\nx\n</t>", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"suffix '\.prompt'.*pass format="):
        parse_prompt_file(path)
    children = parse_prompt_file(path, "xml", append_input=True).child.prompt.children
    assert children[0] == Section("t", ["x"])
    with pytest.raises(ConfigError, match="unknown prompt file format 'yaml'"):
        parse_prompt_file(path, "yaml")


@pytest.mark.parametrize(
    ("name", "text", "hint"),
    [
        ("single.md", "# Task\n\nAnswer yes or no.\n\n{input}\n", "'{input}', which is literal"),
        ("none.md", "# Task\n\nAnswer yes or no.\n", "no {{ input }} placeholder"),
        ("none.xml", "<task>\nAnswer.\n</task>", "<input>{{ input }}</input>"),
        ("none.j2", "Answer {{ constants.x }}.", "no {{ input }} placeholder"),
    ],
)
def test_a_prompt_file_without_the_input_is_refused(
    tmp_path: Path, name: str, text: str, hint: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="never uses the input") as caught:
        parse_prompt_file(path)
    assert hint in str(caught.value) and "--append-input" in str(caught.value)


def test_append_input_adds_the_input_as_a_last_section(tmp_path: Path) -> None:
    path = tmp_path / "p.md"
    path.write_text("# Task\n\nAnswer yes or no.\n", encoding="utf-8")
    program = parse_prompt_file(path, append_input=True)
    prompt = render_request(program, "Is water wet?").messages[-1].content
    assert prompt == "# Task\n\nAnswer yes or no.\n\n# Input\n\nIs water wet?"


def test_render_prompt() -> None:
    assert render_prompt(parse_markdown("# T\n\nStatic.")) == "# T\n\nStatic."
    with pytest.raises(ConfigError, match="pass input="):
        render_prompt(parse_markdown("{{ input }}"))
    assert render_prompt(parse_markdown("{{ input }}"), "x") == "x"
    meta = MetaPrompt([Template("{{ constants.task }}")])
    assert render_prompt(meta, constants={"task": "Add."}) == "Add."


def test_render_request_inside_a_running_loop() -> None:
    async def main() -> str:
        return render_prompt(parse_markdown("Hi {{ input }}"), "loop")

    assert asyncio.run(main()) == "Hi loop"


def test_render_request_refuses_nested_calls() -> None:
    inner = GenerateText(MetaPrompt(["Summarize."]))
    program = Output(GenerateText(MetaPrompt([inner, Template("{{ input }}")])))
    with pytest.raises(ConfigError, match="2 LLM calls"):
        render_request(program, "x")


def test_normalize_whitespace() -> None:
    assert normalize_whitespace(" a  b \n\n\n\tc\n") == "a b\nc"
    assert normalize_whitespace("a\nb") != normalize_whitespace("a b")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="{}%#\r\n -ab'\\", max_size=40))
def test_escape_jinja_renders_the_text(text: str) -> None:
    assert jinja2.Template(escape_jinja(text)).render() == text
    environment = jinja2.Environment(keep_trailing_newline=True)
    assert environment.from_string(escape_jinja(text, final=False)).render() == text
    # A placeholder may follow a piece that is not final.
    template = escape_jinja(text, final=False) + "{{ x }}" + escape_jinja(text)
    assert jinja2.Template(template).render(x="X") == text + "X" + text


# -- property tests: random markdown documents -----------------------------------------------

_HEADING_LINE = re.compile(r"#+(?: .*)?")
_WORD = st.text(
    alphabet=string.ascii_letters + string.digits + "{}%#*_.,:;!?()[]&'\"/-", min_size=1, max_size=8
)
_LINE = (
    st.lists(_WORD, min_size=1, max_size=6)
    .map(" ".join)
    .filter(lambda s: not _HEADING_LINE.fullmatch(s))
    .filter(lambda s: not prompt_files._PLACEHOLDER.search(s))
)
_INPUT = st.text(alphabet=string.ascii_letters + " {}%!?&'", min_size=1, max_size=20).filter(
    lambda s: s.strip() == s and "\n" not in s
)


@dataclasses.dataclass
class Para:
    text: str
    lone: bool = False  # exactly the input placeholder


@dataclasses.dataclass
class Sec:
    title: str
    paragraphs: list[Para]
    sections: list[Sec]


def _paragraph() -> st.SearchStrategy[Para]:
    text = st.lists(_LINE, min_size=1, max_size=3).map("\n".join)
    listing = st.lists(
        st.tuples(st.sampled_from(["- ", "* ", "1. ", "  - "]), _LINE), min_size=1, max_size=4
    ).map(lambda items: "\n".join(a + b for a, b in items))
    fence = st.lists(st.one_of(_LINE, st.just("")), min_size=1, max_size=4).map(
        lambda lines: "```\n" + "\n".join(lines) + "\n```"
    )
    inline = st.tuples(_LINE, _LINE).map(lambda p: f"{p[0]} {{{{ input }}}} {p[1]}")
    return st.one_of(
        text.map(Para),
        listing.map(Para),
        fence.map(Para),
        inline.map(Para),
        st.just(Para("{{ input }}", lone=True)),
    )


_TITLE = (
    st.lists(_WORD, min_size=1, max_size=4)
    .map(" ".join)
    .filter(lambda s: not prompt_files._PLACEHOLDER.search(s))
)


def _sections(depth: int) -> st.SearchStrategy[list[Sec]]:
    sub = _sections(depth + 1) if depth < 3 else st.just([])
    section = st.builds(Sec, _TITLE, st.lists(_paragraph(), max_size=3), sub)
    return st.lists(section, max_size=3 if depth == 1 else 2)


_GAP = st.sampled_from(["\n\n", "\n\n\n", "\n  \n", "  \n\n"])


@st.composite
def markdown_documents(draw: st.DrawFn) -> tuple[str, list[Para], list[Sec]]:
    top = draw(st.lists(_paragraph(), max_size=3))
    sections = draw(_sections(1))
    pieces: list[str] = [p.text for p in top]

    def write(section: Sec, level: int) -> None:
        pad = draw(st.sampled_from(["", " ", "  "]))
        pieces.append(f"{'#' * level} {pad}{section.title}{pad}")
        pieces.extend(p.text for p in section.paragraphs)
        for child in section.sections:
            write(child, level + 1)

    for section in sections:
        write(section, 1)
    text = "".join(piece + draw(_GAP) for piece in pieces)
    return text, top, sections


def _titles(sections: list[Sec]) -> list[str]:
    out: list[str] = []
    for s in sections:
        out += [" ".join(s.title.split()), *_titles(s.sections)]
    return out


def _substitute(text: str, value: str, lone: str) -> str:
    """``text``, lone placeholder lines replaced by ``lone`` and other placeholders by ``value``."""
    lines = [lone if line.strip() == "{{ input }}" else line for line in text.split("\n")]
    return re.sub(r"\{\{\s*input\s*\}\}", lambda _: value, "\n".join(lines))


@settings(max_examples=150, deadline=None)
@given(markdown_documents(), _INPUT)
def test_markdown_round_trip(doc: tuple[str, list[Para], list[Sec]], value: str) -> None:
    text, _, sections = doc
    meta = parse_markdown(text)
    assert [m.node.title for m in find(meta, "Section")] == _titles(sections)
    assert same(rendered(meta, value), _substitute(text, value, value))
    data = parse_markdown(text, input_node="data")
    lone = input_rendering(value, "markdown")
    assert same(rendered(data, value), _substitute(text, value, lone))


@settings(max_examples=100, deadline=None)
@given(markdown_documents(), _INPUT)
def test_markdown_template_round_trip(doc: tuple[str, list[Para], list[Sec]], value: str) -> None:
    # The same document as a jinja author writes it: literal braces escaped, a filter applied.
    template = escape_jinja(doc[0]).replace("{{ '{' }}{ input }}", "{{ input | trim }}")
    meta = parse_template(template)
    assert same(rendered(meta, value), jinja2.Template(template).render(input=value))


# -- property tests: random XML-tagged documents ---------------------------------------------

_TAG_NAME = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True).filter(lambda t: t != "section")
_XML_LINE = (
    st.lists(
        st.text(
            alphabet=string.ascii_letters + string.digits + "{}%#*.,:;!?&'\"/->",
            min_size=1,
            max_size=8,
        ),
        min_size=1,
        max_size=6,
    )
    .map(" ".join)
    .filter(lambda s: not prompt_files._PLACEHOLDER.search(s))
)


@dataclasses.dataclass
class Elem:
    tag: str
    children: list[Elem | Para]
    inline: bool  # "<t>content</t>" rather than the tags on lines of their own
    gap: str  # between children


def _xml_paragraph() -> st.SearchStrategy[Para]:
    text = st.lists(_XML_LINE, min_size=1, max_size=3).map("\n".join)
    inline = st.tuples(_XML_LINE, _XML_LINE).map(lambda p: f"{p[0]} {{{{input}}}} {p[1]}")
    # Blank lines around a lone placeholder keep it a paragraph of its own.
    lone = st.just(Para("\n{{ input }}\n", lone=True))
    return st.one_of(text.map(Para), inline.map(Para), lone)


def _elements(depth: int) -> st.SearchStrategy[Elem]:
    child: st.SearchStrategy[Elem | Para] = (
        st.one_of(_xml_paragraph(), _elements(depth + 1)) if depth < 3 else _xml_paragraph()
    )
    gap = st.sampled_from(["\n", "\n\n"])
    return st.builds(Elem, _TAG_NAME, st.lists(child, max_size=3), st.booleans(), gap)


def _write_xml(node: Elem | Para, canonical: bool) -> str:
    """The file (``canonical=False``) or what the xml section format makes of its tags."""
    if isinstance(node, Para):
        return node.text
    inner = node.gap.join(_write_xml(c, canonical) for c in node.children)
    if canonical:
        if not node.children:
            return f'\n<section title="{node.tag}"></section>\n'
        return f'\n<section title="{node.tag}">\n{inner}\n</section>\n'
    if node.inline:
        return f"<{node.tag}>{inner}</{node.tag}>"
    return f"<{node.tag}>\n{inner}\n</{node.tag}>"


def _tags(nodes: list[Elem | Para]) -> list[str]:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, Elem):
            out += [node.tag, *_tags(node.children)]
    return out


@st.composite
def xml_documents(draw: st.DrawFn) -> tuple[str, str, list[str]]:
    top: list[Elem | Para] = draw(st.lists(st.one_of(_xml_paragraph(), _elements(1)), max_size=4))
    text = "\n".join(_write_xml(node, False) for node in top)
    canonical = "\n".join(_write_xml(node, True) for node in top)
    return text, canonical, _tags(top)


@settings(max_examples=150, deadline=None)
@given(xml_documents(), _INPUT)
def test_xml_round_trip(doc: tuple[str, str, list[str]], value: str) -> None:
    text, canonical, tags = doc
    meta = parse_xml(text)
    assert [m.node.title for m in find(meta, "Section")] == tags
    prompt = rendered(meta, value)
    assert same(prompt, _substitute(canonical, value, value))
    titles = []
    todo = list(XMLFormat().parse(prompt))
    while todo:
        block = todo.pop(0)
        if isinstance(block, SectionBlock):
            titles.append(block.title)
            todo[:0] = block.children
    assert titles == tags
    data = parse_xml(text, input_node="data")
    lone = input_rendering(value, "xml")
    assert same(rendered(data, value), _substitute(canonical, value, lone))
