"""The token estimate: the ASCII fast path counts exactly what the regex counts."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from sammo_core.tokens import count_tokens

_REFERENCE = re.compile(r"\w+|[^\w\s]", re.UNICODE)

# Every ASCII character, weighted towards the boundaries the count depends on.
_ASCII = st.text(
    alphabet=st.one_of(
        st.sampled_from("ab_9 \t\n.,;'\"!-\x1c\x1f\x0b"), st.characters(max_codepoint=127)
    )
)


@settings(max_examples=500, deadline=None)
@given(_ASCII)
def test_ascii_counts_match_the_regex(text: str) -> None:
    assert count_tokens(text) == len(_REFERENCE.findall(text))


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_text_counts_match_the_regex(text: str) -> None:
    assert count_tokens(text) == len(_REFERENCE.findall(text))


def test_a_prompt_counts_words_and_marks() -> None:
    prompt = (
        "# Task\n\nClassify it: positive, negative or neutral.\n\nInput: It's great!\n\nOutput:"
    )
    # Task Classify it positive negative or neutral Input It s great Output = 12 words;
    # # : , . : ' ! : = 8 marks
    assert count_tokens(prompt) == 20
