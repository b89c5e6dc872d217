"""Data formats: exact prompts, round trips, and answer parsing that never raises."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renderers import (
    DATA_FORMATS,
    DataFormat,
    JSONDataFormat,
    MarkdownDataFormat,
    PlainDataFormat,
    Record,
    RenderError,
    SectionBlock,
    Text,
    UnknownFormatError,
    XMLDataFormat,
    get_data_format,
    get_section_format,
)

FORMATS = sorted(DATA_FORMATS)
TEXT_FORMATS = [name for name in FORMATS if name != "json"]

# Fragments that look like each format's structure: labels, headers, fields, tags, fences.
ALPHABET = "ab Z9\n\t<>&\"':;#*_-[]{}\\/`é\u2028"
FRAGMENTS = [
    "Input:",
    "Output [1]:",
    "output:",
    "**Input:**",
    "**Output [2]:**",
    "__Output__:",
    "Example 1:",
    "Q:",
    "A [1]:",
    "a:",
    "Sentence:",
    "**Label [2]:**",
    "**Example x**",
    "\n- key: v",
    "\n- **key:** v",
    "\\",
    "\n```json\n",
    "\n```",
    "<output>",
    '<output id="1">',
    "</output>",
    "<input>",
    "<example>",
    "<field name='k'>",
    "&amp;",
    "&lt;",
    "&#10;",
    '{"id": 1, "output": "x"}',
    '{"output": ',
    "\n\n",
]
texts = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(alphabet=ALPHABET, max_size=4)), max_size=6
).map("".join)
stripped = texts.map(str.strip)
keys = st.text(alphabet="abcXYZ_ -.9é", min_size=1, max_size=6).filter(lambda k: k == k.strip())
finite = st.floats(allow_nan=False, allow_infinity=False)
leaves = st.one_of(texts, st.integers(), st.booleans(), st.none(), finite)
fields = st.dictionaries(keys, leaves, max_size=3)
text_values = st.one_of(texts, fields, st.integers())
label_ids = st.one_of(
    st.integers(-5, 10**6),
    st.text(alphabet="abc019-_:. #é", min_size=1, max_size=6).filter(lambda s: s == s.strip()),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=8,
)


def _records(
    values: st.SearchStrategy[Any], outputs: st.SearchStrategy[Any], *, min_size: int = 0
) -> st.SearchStrategy[list[Record]]:
    ids = st.lists(label_ids, min_size=min_size, max_size=4, unique_by=lambda i: str(i).strip())
    return ids.flatmap(
        lambda ids: st.tuples(*[st.builds(Record, st.just(i), values, outputs) for i in ids]).map(
            list
        )
    )


VALUES = dict.fromkeys(TEXT_FORMATS, text_values) | {"json": json_values}
OUTPUTS = {name: st.none() | text_values for name in TEXT_FORMATS} | {"json": json_values}

RECORDS = [
    Record(1, "I loved it.", "positive"),
    Record(2, {"question": "Is it good?", "context": "Line one.\nLine two."}, "no"),
]
EXPECTED_EXAMPLES = {
    "json": """\
{"id": 1, "input": "I loved it.", "output": "positive"}
{"id": 2, "input": {"question": "Is it good?", "context": "Line one.\\nLine two."}, \
"output": "no"}""",
    "xml": """\
<example id="1">
<input>I loved it.</input>
<output>positive</output>
</example>
<example id="2">
<input>
<question>Is it good?</question>
<context>Line one.
Line two.</context>
</input>
<output>no</output>
</example>""",
    "markdown": """\
**Example 1**

**Input:** I loved it.

**Output:** positive

**Example 2**

**Input:**
- **question:** Is it good?
- **context:** Line one.
Line two.

**Output:** no""",
    "plain": """\
Example 1:
Input: I loved it.
Output: positive

Example 2:
Input:
- question: Is it good?
- context: Line one.
Line two.
Output: no""",
    "qa": """\
Example 1:
Q: I loved it.
A: positive

Example 2:
Q:
- question: Is it good?
- context: Line one.
Line two.
A: no""",
    "sentence": """\
Example 1:
Sentence: I loved it.
Label: positive

Example 2:
Sentence:
- question: Is it good?
- context: Line one.
Line two.
Label: no""",
}
EXPECTED_INPUTS = {
    "json": '{"id": 1, "input": "I loved it."}\n{"id": 2, "input": "Terrible."}',
    "xml": '<input id="1">I loved it.</input>\n<input id="2">Terrible.</input>',
    "markdown": "**Input [1]:** I loved it.\n\n**Input [2]:** Terrible.",
    "plain": "Input [1]: I loved it.\n\nInput [2]: Terrible.",
    "qa": "Q [1]: I loved it.\n\nQ [2]: Terrible.",
    "sentence": "Sentence [1]: I loved it.\n\nSentence [2]: Terrible.",
}
EXPECTED_SINGLE_INPUT = {
    "json": '{"input": "I loved it."}',
    "xml": "<input>I loved it.</input>",
    "markdown": "**Input:** I loved it.",
    "plain": "Input: I loved it.",
    "qa": "Q: I loved it.",
    "sentence": "Sentence: I loved it.",
}
EXPECTED_OUTPUTS = {
    "json": '{"id": 1, "output": "positive"}\n{"id": 2, "output": "negative"}',
    "xml": '<output id="1">positive</output>\n<output id="2">negative</output>',
    "markdown": "**Output [1]:** positive\n**Output [2]:** negative",
    "plain": "Output [1]: positive\nOutput [2]: negative",
    "qa": "A [1]: positive\nA [2]: negative",
    "sentence": "Label [1]: positive\nLabel [2]: negative",
}
EXPECTED_HINTS = {
    "json": (
        'Answer with one JSON object: {"output": <answer>}.',
        "Answer each of the 2 inputs with one JSON object per line: "
        '{"id": <id>, "output": <answer>}.',
    ),
    "xml": (
        "Write your answer inside <output></output> tags.",
        'Answer each of the 2 inputs as <output id="ID">ANSWER</output>, '
        "using the id of its input.",
    ),
    "markdown": (
        "**Output:**",
        'Answer each of the 2 inputs on its own line as "**Output [<id>]:** <answer>".',
    ),
    "plain": (
        "Output:",
        'Answer each of the 2 inputs on its own line as "Output [<id>]: <answer>".',
    ),
    "qa": ("A:", 'Answer each of the 2 inputs on its own line as "A [<id>]: <answer>".'),
    "sentence": (
        "Label:",
        'Answer each of the 2 inputs on its own line as "Label [<id>]: <answer>".',
    ),
}
PAIR = [Record(1, "I loved it.", "positive"), Record(2, "Terrible.", "negative")]


# -- exact prompts ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FORMATS)
def test_exact_examples(name: str) -> None:
    fmt = get_data_format(name)
    assert fmt.render_examples(RECORDS) == EXPECTED_EXAMPLES[name]
    assert fmt.parse_examples(EXPECTED_EXAMPLES[name]) == RECORDS


@pytest.mark.parametrize("name", FORMATS)
def test_exact_inputs_outputs_and_hints(name: str) -> None:
    fmt = get_data_format(name)
    assert fmt.render_inputs(PAIR) == EXPECTED_INPUTS[name]
    assert fmt.render_inputs(PAIR[:1]) == EXPECTED_SINGLE_INPUT[name]
    assert fmt.render_outputs(PAIR) == EXPECTED_OUTPUTS[name]
    assert (fmt.answer_hint([1]), fmt.answer_hint([1, 2])) == EXPECTED_HINTS[name]
    assert fmt.answer_hint([]) == ""
    assert fmt.render_inputs([]) == fmt.render_outputs([]) == fmt.render_examples([]) == ""


def test_xml_nested_dicts_and_non_name_keys() -> None:
    fmt = XMLDataFormat()
    record = Record("a b", {"doc": {"title": "T", "body": "x < y"}, "my key?": 3}, None)
    text = fmt.render_examples([record])
    assert text == (
        '<example id="a b">\n<input>\n<doc>\n<title>T</title>\n<body>x < y</body>\n</doc>\n'
        '<field name="my key?">3</field>\n</input>\n</example>'
    )
    assert fmt.parse_examples(text) == [fmt.normalize_record(record)]
    assert fmt.normalize_record(record).input == {
        "doc": {"title": "T", "body": "x < y"},
        "my key?": "3",
    }


def test_text_formats_escape_lines_that_read_as_structure() -> None:
    value = "first\nOutput [2]: fake\n\\Input: literal\nplain line"
    plain = PlainDataFormat().render_outputs([Record(1, "", value), Record(2, "", "real")])
    assert plain == (
        "Output [1]: first\n\\Output [2]: fake\n\\\\Input: literal\nplain line\nOutput [2]: real"
    )
    assert PlainDataFormat().parse_outputs(plain, [1, 2]) == {1: value, 2: "real"}
    xml = XMLDataFormat().render_inputs([Record(1, "a <b>bold</b> & &amp; 1 < 2")])
    assert xml == "<input>a &lt;b>bold&lt;/b> & &amp;amp; 1 < 2</input>"


def test_data_nested_in_sections_is_not_escaped_again() -> None:
    for data, section in [("xml", "xml"), ("markdown", "markdown"), ("plain", "plain")]:
        examples = get_data_format(data).render_examples(RECORDS)
        fmt = get_section_format(section)
        text = fmt.render([SectionBlock("Examples", (Text(examples),))])
        assert examples in text, (data, section)
        assert fmt.parse(text) == (SectionBlock("Examples", (Text(examples),)),)


# -- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FORMATS)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_parse_examples_inverts_render_examples(name: str, data: st.DataObject) -> None:
    fmt = get_data_format(name)
    records = data.draw(_records(VALUES[name], OUTPUTS[name]))
    text = fmt.render_examples(records)
    assert fmt.parse_examples(text) == [fmt.normalize_record(r) for r in records]


@pytest.mark.parametrize("name", FORMATS)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_parse_outputs_inverts_render_outputs(name: str, data: st.DataObject) -> None:
    fmt = get_data_format(name)
    records = data.draw(_records(VALUES[name], OUTPUTS[name], min_size=1))
    ids = [r.id for r in records]
    expected = {r.id: fmt.normalize_value(r.output) for r in records}
    assert fmt.parse_outputs(fmt.render_outputs(records), ids) == expected


@pytest.mark.parametrize("name", FORMATS)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_stripped_string_outputs_round_trip_exactly(name: str, data: st.DataObject) -> None:
    fmt = get_data_format(name)
    records = data.draw(_records(stripped, stripped, min_size=1))
    ids = [r.id for r in records]
    assert fmt.parse_outputs(fmt.render_outputs(records), ids) == {r.id: r.output for r in records}


@pytest.mark.parametrize("name", FORMATS)
@settings(max_examples=100, deadline=None)
@given(text=texts, ids=st.lists(label_ids, max_size=4))
def test_parse_outputs_never_raises(name: str, text: str, ids: list[int | str]) -> None:
    result = get_data_format(name).parse_outputs(text, ids)
    assert list(result) == list(dict.fromkeys(ids))


@pytest.mark.parametrize("name", FORMATS)
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_truncated_answers_never_raise(name: str, data: st.DataObject) -> None:
    fmt = get_data_format(name)
    records = data.draw(_records(VALUES[name], OUTPUTS[name], min_size=2))
    text = fmt.render_outputs(records)
    cut = data.draw(st.integers(0, len(text)))
    result = fmt.parse_outputs(text[:cut], [r.id for r in records])
    assert set(result) == {r.id for r in records}


# -- reading real answers -------------------------------------------------------------------------

GARBAGE = [
    "",
    "   ",
    "no idea",
    "{",
    "[[[[",
    "<output",
    "Output [",
    "```",
    "\x00\ufffd",
    "{" * 5000,
]


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("text", GARBAGE)
def test_garbage_gives_none_for_several_ids(name: str, text: str) -> None:
    assert get_data_format(name).parse_outputs(text, [1, 2]) == {1: None, 2: None}


@pytest.mark.parametrize("name", FORMATS)
def test_deeply_nested_text_does_not_raise(name: str) -> None:
    fmt = get_data_format(name)
    for text in ["[" * 20_000, '{"a":' * 3_000, "<output><a>" * 5_000, "<a>" * 20_000]:
        assert set(fmt.parse_outputs(text, [1, 2])) == {1, 2}


ANSWERS = {
    "json": [
        '{"id": 1, "output": "a"}\n{"id": 2, "outp',
        'Sure! Here they are:\n```json\n[{"id": "1", "output": "a"}]\n```\nAnything else?',
        '{"id": 1, "output": "a"} {"id": 1, "output": "b"} {"id": 9, "output": "c"}',
        '{"answers": [{"id": 1, "output": "a"}, {"id": 3, "output": "d"}]}',
    ],
    "xml": [
        '<output id="1">a</output>\n<output id="2">trunc',
        'Sure!\n```xml\n<output id=" 1 ">a</output>\n```\nDone.',
        '<output id="1">a</output><output id="1">b</output><output id="9">c</output>',
        '<answers>\n<OUTPUT id="1">a</OUTPUT>\n<output id="3">d</output>\n</answers>',
    ],
    "markdown": [
        "**Output [1]:** a\n\n**Output [3]:** extra",
        "Sure! Here they are:\n```\n**Output [ 1 ]:** a\n```",
        "**Output [1]:** a\n**Output [1]:** b\n**Output [9]:** c",
        "Output [1]: a\n**output [3]**: d",
    ],
    "plain": [
        "Output [1]: a\nOutput [3]: extra",
        "Sure! Here they are:\n```text\nOutput [1]: a\n```",
        "Output [1]: a\nOutput [1]: b\nOutput [9]: c",
        "**Output [1]:** a\noutput [3]: d",
    ],
    "qa": [
        "A [1]: a\nA [3]: extra",
        "Sure! Here they are:\n```text\nA [1]: a\n```",
        "A [1]: a\nA [1]: b\nA [9]: c",
        "**A [1]:** a\na [3]: d",
    ],
    "sentence": [
        "Label [1]: a\nLabel [3]: extra",
        "Sure! Here they are:\n```text\nLabel [1]: a\n```",
        "Label [1]: a\nLabel [1]: b\nLabel [9]: c",
        "**Label [1]:** a\nlabel [3]: d",
    ],
}


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("case", range(4))
def test_answers_with_noise_missing_extra_and_repeated_ids(name: str, case: int) -> None:
    result = get_data_format(name).parse_outputs(ANSWERS[name][case], [1, 2])
    assert result == {1: "a", 2: None}


@pytest.mark.parametrize("name", ["markdown", "plain", "qa", "sentence"])
def test_labelled_answer_cut_inside_the_next_label_keeps_the_fragment(name: str) -> None:
    # Documented limitation: a cut answer reads like a complete one in these formats.
    label = get_data_format(name).answer_cue().strip("*:")
    text = f"{label} [1]: a\n{label} [2"
    expected = {1: f"a\n{label} [2", 2: None}
    assert get_data_format(name).parse_outputs(text, [1, 2]) == expected


@pytest.mark.parametrize("name", FORMATS)
def test_ids_match_across_types(name: str) -> None:
    fmt = get_data_format(name)
    text = fmt.render_outputs([Record("3", "", "x"), Record(4, "", "y")])
    assert fmt.parse_outputs(text, [3, "4"]) == {3: "x", "4": "y"}


SINGLE: dict[str, list[tuple[str, Any]]] = {
    "json": [('{"output": "yes"}', "yes"), ('{"id": 5, "output": "yes"}', "yes"),
             ("yes", None), ('{"answer": "yes"}', None), ('{"output": [1, 2]}', [1, 2])],
    "xml": [("<output>yes</output>", "yes"), ('Hmm.\n<output id="8">yes</output>', "yes"),
            ("yes", None), ("<output>\n<a>1</a>\n</output>", {"a": "1"})],
    "markdown": [("yes", "yes"), ("**Output:** yes", "yes"), ("Output [7]: yes", "yes"),
                 ("Let me think.\n**Output:** yes", "yes"), ("```\nyes\n```", "yes"), ("", None)],
    "plain": [("  yes\n", "yes"), ("Output: yes", "yes"), ("OUTPUT: yes\nmore", "yes\nmore"),
              ("I think...\nOutput [1]: yes", "yes"), ("```\nyes\n```", "yes"), (" \n", None)],
    "qa": [(" yes", "yes"), ("A: yes", "yes"), ("a: yes\nQ: next", "yes"),
           ("Output: yes", "Output: yes"), ("Hmm.\nA [1]: yes", "yes")],
    "sentence": [(" positive", "positive"), ("Label: positive", "positive"),
                 ("positive\nSentence: more", "positive\nSentence: more"),
                 ("label: positive\nSentence: next", "positive")],
}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "text", "expected"), [(n, t, e) for n in SINGLE for t, e in SINGLE[n]]
)
def test_single_id_is_lenient(name: str, text: str, expected: Any) -> None:
    assert get_data_format(name).parse_outputs(text, [1]) == {1: expected}


@pytest.mark.parametrize("name", FORMATS)
def test_no_ids_give_an_empty_mapping(name: str) -> None:
    assert get_data_format(name).parse_outputs("Output: x", []) == {}


# -- errors and registry --------------------------------------------------------------------------


def test_unrenderable_values_raise_render_error() -> None:
    with pytest.raises(RenderError, match="as JSON"):
        JSONDataFormat().render_inputs([Record(1, math.nan)])
    with pytest.raises(RenderError, match="id 'a]b'"):
        PlainDataFormat().render_inputs([Record("a]b", "x"), Record(2, "y")])
    with pytest.raises(RenderError, match="field name 'a:b'"):
        MarkdownDataFormat().render_inputs([Record(1, {"a:b": "x"})])
    with pytest.raises(RenderError, match="must be strings"):
        XMLDataFormat().render_inputs([Record(1, {3: "x"})])
    with pytest.raises(TypeError, match="int or a str"):
        Record(True, "x")


def test_json_parse_examples_names_the_bad_line() -> None:
    with pytest.raises(RenderError, match="line 2 is not valid JSON"):
        JSONDataFormat().parse_examples('{"id": 1, "input": "a"}\n{oops')
    with pytest.raises(RenderError, match='line 1 needs an object with "id" and "input"'):
        JSONDataFormat().parse_examples("[1]")


def test_registry_and_unknown_names() -> None:
    assert set(DATA_FORMATS) == {"json", "xml", "markdown", "plain", "qa", "sentence"}
    for name, cls in DATA_FORMATS.items():
        fmt = get_data_format(name)
        assert isinstance(fmt, cls)
        assert isinstance(fmt, DataFormat)
        assert fmt.name == name
        assert fmt == cls()
    with pytest.raises(
        UnknownFormatError,
        match=r"unknown data format 'csv'; use one of: json, markdown, plain, qa, sentence, xml",
    ):
        get_data_format("csv")


@pytest.mark.parametrize(
    ("name", "cue"),
    [("plain", "Output:"), ("markdown", "**Output:**"), ("qa", "A:"), ("sentence", "Label:"),
     ("json", ""), ("xml", "")],
)  # fmt: skip
def test_answer_cue_is_the_single_input_hint_of_labelled_formats(name: str, cue: str) -> None:
    fmt = get_data_format(name)
    assert fmt.answer_cue() == cue
    if cue:
        assert fmt.answer_hint([1]) == cue


def test_prefix_formats_escape_their_own_labels_only() -> None:
    value = "first line\nA: not an answer\nInput: plain text here"
    qa = get_data_format("qa")
    rendered = qa.render_examples([Record(1, value, "x")])
    assert "\n\\A: not an answer\nInput: plain text here\n" in rendered
    assert qa.parse_examples(rendered) == [Record(1, value, "x")]
