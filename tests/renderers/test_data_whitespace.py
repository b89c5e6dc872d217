"""Inputs are written exactly as the data holds them; only reading answers back is tolerant."""

from __future__ import annotations

import pytest

from renderers import Record, get_data_format

FORMATS = ["plain", "markdown", "xml", "json"]


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("value", ["Is it raining? ", "  indented", "tab\t", "two lines \nend  "])
def test_inputs_and_examples_keep_their_whitespace(name: str, value: str) -> None:
    fmt = get_data_format(name)
    written = value if name != "json" else value.replace("\t", "\\t").replace("\n", "\\n")
    assert written in fmt.render_inputs([Record(1, value)])
    assert written in fmt.render_inputs([Record(1, value), Record(2, "other")])
    assert written in fmt.render_examples([Record(1, value, "yes")])


@pytest.mark.parametrize("name", ["plain", "markdown", "xml"])
def test_dict_fields_keep_their_whitespace(name: str) -> None:
    fmt = get_data_format(name)
    assert "What? " in fmt.render_inputs([Record(1, {"question": "What? ", "context": "c"})])


def test_plain_input_line_is_the_label_then_the_value_as_is() -> None:
    fmt = get_data_format("plain")
    assert fmt.render_inputs([Record(1, "Is it raining? ")]) == "Input: Is it raining? "
    assert fmt.render_examples([Record(1, " Hi ", "greeting")]) == (
        "Example 1:\nInput:  Hi \nOutput: greeting"
    )


@pytest.mark.parametrize("name", ["plain", "markdown", "xml"])
def test_examples_with_whitespace_read_back_stripped(name: str) -> None:
    fmt = get_data_format(name)
    records = [Record(1, " a? ", " yes "), Record(2, "\n- key: v", "no")]
    parsed = fmt.parse_examples(fmt.render_examples(records))
    assert parsed == [fmt.normalize_record(r) for r in records]
    assert parsed[0] == Record(1, "a?", "yes")
    assert parsed[1].input == "- key: v"  # a text, not a field list


@pytest.mark.parametrize("name", ["plain", "markdown"])
def test_answers_are_still_read_tolerantly(name: str) -> None:
    fmt = get_data_format(name)
    assert fmt.parse_outputs("  positive  \n", [1]) == {1: "positive"}
    label = fmt.answer_hint([1])
    assert fmt.parse_outputs(f"{label}   negative \n", [1]) == {1: "negative"}
