"""Accuracy's normalizer: a one-word answer normalizes as the general path would."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sammo_core.objectives import Normalizer

_WORD = st.text(st.characters(categories=("Lu", "Ll", "Lt", "Nd", "No")), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(word=_WORD)
def test_one_word_normalizes_like_padded_text(word: str) -> None:
    # " word. " takes the general path (spaces, a period) and must end up the same.
    assert Normalizer()(word) == Normalizer()(f" {word}. ")
    assert Normalizer(casefold=False)(word) == word


def test_labels_compare_regardless_of_case() -> None:
    assert Normalizer()("Positive") == Normalizer()("positive.") == "positive"
