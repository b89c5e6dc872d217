"""One-line fast paths of the labelled data formats: they read and write as the general path."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renderers import Record, get_data_format

_ONE_LINE = st.text(
    alphabet=st.one_of(st.sampled_from(" \t\r*_:[]`#Output input"), st.characters()),
    max_size=30,
).filter(lambda t: "\n" not in t)


@pytest.mark.parametrize("name", ["plain", "markdown"])
@settings(max_examples=300, deadline=None)
@given(text=_ONE_LINE)
def test_one_line_answer_parses_as_with_a_line_break(name: str, text: str) -> None:
    # A trailing line break takes the general path; it must not change the answer.
    fmt = get_data_format(name)
    assert fmt.parse_outputs(text, [1]) == fmt.parse_outputs(text + "\n", [1])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("positive", "positive"),
        ("  positive \r", "positive"),
        ("   ", None),
        ("Output: negative", "negative"),
        ("**Output:** neutral", "neutral"),
        ("Output [1]: yes", "yes"),
    ],
)
def test_one_line_answers(text: str, expected: str | None) -> None:
    assert get_data_format("plain").parse_outputs(text, [1]) == {1: expected}


@settings(max_examples=300, deadline=None)
@given(text=_ONE_LINE)
def test_one_line_input_is_written_after_the_label(text: str) -> None:
    written = get_data_format("plain").render_inputs([Record(1, text)])
    assert written == (f"Input: {text}" if text else "Input:")


def test_multi_line_input_still_escapes_labels() -> None:
    written = get_data_format("plain").render_inputs([Record(1, "a\nOutput: b")])
    assert written == "Input: a\n\\Output: b"
