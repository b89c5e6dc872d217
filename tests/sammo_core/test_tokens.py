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


_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_text_without_cjk_counts_words_and_marks(text: str) -> None:
    plain = _CJK.sub(" ", text)
    assert count_tokens(plain) == len(_REFERENCE.findall(plain))


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from("我们今天公园散步ひらがなカタカナ한국어")), st.text())
def test_each_cjk_character_is_a_token(cjk: str, other: str) -> None:
    # A run of CJK characters counts one token per character (a word count made it 1), also
    # next to other text.
    assert count_tokens(cjk) == len(cjk)
    assert count_tokens(f"{other} {cjk}") == count_tokens(other) + len(cjk)


def test_a_prompt_counts_words_and_marks() -> None:
    prompt = (
        "# Task\n\nClassify it: positive, negative or neutral.\n\nInput: It's great!\n\nOutput:"
    )
    # Task Classify it positive negative or neutral Input It s great Output = 12 words;
    # # : , . : ' ! : = 8 marks
    assert count_tokens(prompt) == 20
