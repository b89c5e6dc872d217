"""RemoveFiller and remove_filler: deterministic compression of section text."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mutators.base import Mutation
from mutators.compression import LEVELS, RemoveFiller, remove_filler
from sammo_core import (
    ConfigError,
    GenerateText,
    InputData,
    MetaPrompt,
    Output,
    Paragraph,
    Section,
    Template,
)

SENTENCE = (
    "Please make sure to answer the question very carefully in order to get it right.  "
    "It is important that you basically keep it short."
)


def program() -> Output:
    return Output(
        GenerateText(
            MetaPrompt(
                [
                    Section("Task", [SENTENCE]),
                    Section(
                        "Rules", [Paragraph("Note that you should be really brief."), "Be kind."]
                    ),
                    Section("Style", ["Be direct."]),
                    Section("Input", [InputData()]),
                ]
            )
        )
    )


def test_phrases_level_on_a_sample_sentence() -> None:
    assert (
        remove_filler(SENTENCE) == "Answer the question carefully to get it right. Keep it short."
    )


def test_stopwords_level_also_drops_articles_and_that() -> None:
    assert (
        remove_filler(SENTENCE, level="stopwords")
        == "Answer question carefully to get it right. Keep it short."
    )
    assert remove_filler("The answer is the one that fits.", "stopwords") == "Answer is one fits."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Kindly, note that you should be really precise, please.", "Be precise."),
        ("In order to win, you need to play. I want you to answer.", "To win, play. Answer."),
        ("Due to the fact that it rains, stay in.", "Because it rains, stay in."),
        ("Answer  with   one word .", "Answer with one word."),
        ("  - please list items\n\n\n\n    indented  code", "  - list items\n\n    indented code"),
        ("pleased to meet you", "pleased to meet you"),  # whole words only
        ("a very-large number", "a very-large number"),  # hyphenated compounds stay
        ("std::vector", "std::vector"),
    ],
)
def test_phrase_rules(text: str, expected: str) -> None:
    assert remove_filler(text) == expected


def test_option_letters_survive_the_stopwords_level() -> None:
    assert remove_filler("Answer A or B, not a guess.", "stopwords") == "Answer A or B, not guess."


@pytest.mark.parametrize("text", ["Please.", "very", "Please, kindly!"])
def test_never_empties_a_text(text: str) -> None:
    assert remove_filler(text) == text
    assert remove_filler(text, "stopwords") == text


def test_unknown_level_names_the_valid_ones() -> None:
    with pytest.raises(
        ConfigError, match="unknown compression level 'max'; use one of: phrases, stopwords"
    ):
        RemoveFiller(level="max")
    with pytest.raises(ConfigError, match="'max'"):
        remove_filler("x", level="max")
    assert LEVELS == ("phrases", "stopwords")


def test_one_child_per_section_that_would_change(
    prompt_of: Callable[..., str], fresh_children: Callable[..., list[Mutation]]
) -> None:
    children = fresh_children(RemoveFiller(), program())
    assert sorted(c.description for c in children) == [
        "remove filler from 'Rules' (-5 tokens)",
        "remove filler from 'Task' (-13 tokens)",
    ]
    by_description = {c.description: c.program for c in children}
    text = prompt_of(by_description["remove filler from 'Task' (-13 tokens)"])
    assert text.startswith(
        "# Task\n\nAnswer the question carefully to get it right. Keep it short.\n\n# Rules\n\n"
        "Note that you should be really brief."
    )
    rules = prompt_of(by_description["remove filler from 'Rules' (-5 tokens)"])
    assert "# Rules\n\nBe brief.\n\nBe kind.\n\n# Style" in rules
    assert SENTENCE in rules


def test_stopwords_level_saves_more(mutate: Callable[..., list[Mutation]]) -> None:
    [child] = mutate(RemoveFiller("Section[title='Task']", level="stopwords"), program())
    assert child.description == "remove filler from 'Task' (-14 tokens)"
    assert repr(RemoveFiller(level="stopwords")) == (
        "RemoveFiller(selector='Section', level='stopwords')"
    )


def test_not_applicable_when_nothing_would_change(mutate: Callable[..., list[Mutation]]) -> None:
    p = Output(
        GenerateText(
            MetaPrompt(
                [Section("Task", ["Be direct."]), Template("Please {{ input }}"), InputData()]
            )
        )
    )
    assert not RemoveFiller().applicable(p)
    assert mutate(RemoveFiller(), p) == []


def test_deterministic_for_a_seed(reproducible: Callable[..., list[tuple[str, str]]]) -> None:
    assert len(reproducible(RemoveFiller(), program, seed=5, n=1)) == 1
