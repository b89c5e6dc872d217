"""Deterministic prompt compression: strip filler phrases (and optionally stop words).

:func:`remove_filler` rewrites one text; :class:`RemoveFiller` applies it to the plain text of
one section per child. No model is involved, so the result is the same on every run.

>>> remove_filler("Please make sure to answer the question very briefly.")
'Answer the question briefly.'
>>> remove_filler("Please make sure to answer the question very briefly.", level="stopwords")
'Answer question briefly.'
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from mutators.base import (
    Edit,
    Mutation,
    MutationContext,
    Mutator,
    choose_children,
    join_path,
    node_label,
    replace,
    text_children,
)
from sammo_core.components import Output
from sammo_core.errors import ConfigError
from sammo_core.selectors import Match
from sammo_core.tokens import count_tokens

__all__ = ["LEVELS", "RemoveFiller", "remove_filler"]

#: ``phrases`` removes filler phrases and tidies whitespace; ``stopwords`` also drops the
#: articles and "that" (lossier: "the answer" and "answer" read the same to most models).
LEVELS = ("phrases", "stopwords")

# (phrase regex, replacement), applied in order, case-insensitively, on word boundaries.
# Longer phrases come before their parts ("it is important that you" before "... that").
_PHRASES: tuple[tuple[str, str], ...] = (
    (r"i would like you to", ""),
    (r"i want you to", ""),
    (r"it is (?:very |really )?important that you", ""),
    (r"it is (?:very |really )?important that", ""),
    (r"it is (?:very |really )?important to", ""),
    (r"make sure (?:that )?you", ""),
    (r"make sure (?:that|to)", ""),
    (r"be sure to", ""),
    (r"you should", ""),
    (r"you need to", ""),
    (r"note that", ""),
    (r"please", ""),
    (r"kindly", ""),
    (r"in order to", "to"),
    (r"due to the fact that", "because"),
    (r"in the event that", "if"),
    (r"basically", ""),
    (r"essentially", ""),
    (r"actually", ""),
    (r"literally", ""),
    (r"simply", ""),
    (r"really", ""),
    (r"very", ""),
)
_STOPWORDS = (r"the", r"an", r"a", r"that")

# A removed phrase takes a following comma and the spaces after it; the next letter is kept
# so it can be capitalised when the phrase began a sentence.
_SUFFIX = r"\b(?![-'\u2019]),?[ \t]*(?P<next>[^\W\d_])?"


def _rule(phrase: str, replacement: str) -> tuple[re.Pattern[str], str]:
    return re.compile(rf"\b{phrase}{_SUFFIX}", re.IGNORECASE), replacement


_PHRASE_RULES = tuple(_rule(p, r) for p, r in _PHRASES)
# Stop words must be followed by a word: "Answer A or B" keeps its option letter only when
# the article is lower case or starts a sentence, hence the case-sensitive variants.
_STOPWORD_RULES = tuple(
    (re.compile(rf"(?:^|(?<=[.!?:] )){w.capitalize()}[ \t]+(?P<next>\w)", re.MULTILINE), "")
    for w in _STOPWORDS
) + tuple((re.compile(rf"\b{w}[ \t]+(?P<next>\w)"), "") for w in _STOPWORDS)


def _apply(text: str, pattern: re.Pattern[str], replacement: str) -> str:
    def sub(match: re.Match[str]) -> str:
        following = match.group("next") or ""
        if match.group(0)[0].isupper():  # the phrase began a sentence: keep it capitalised
            if replacement:
                return replacement[0].upper() + replacement[1:] + " " + following
            return following.upper()
        return f"{replacement} {following}" if replacement else following

    return pattern.sub(sub, text)


def _tidy(text: str) -> str:
    lines = []
    for line in text.split("\n"):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        body = re.sub(r"[ \t]{2,}", " ", line[len(indent) :])
        body = re.sub(r"[ \t]+([,.;:!?])", r"\1", body)
        body = re.sub(r"[,;](?=[.;:!?])", "", body)  # "x, ." left by a removal
        lines.append((indent + body).rstrip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ConfigError(f"unknown compression level {level!r}; use one of: {', '.join(LEVELS)}")


def remove_filler(text: str, level: str = "phrases") -> str:
    """``text`` without filler phrases (and, at level ``stopwords``, articles and "that").

    Also collapses repeated spaces, drops spaces before punctuation and keeps at most one
    blank line in a row; indentation is kept. A text that would lose all its words is
    returned unchanged.

    >>> remove_filler("It is important that you  basically keep it short , kindly.")
    'Keep it short.'
    >>> remove_filler("Please.")
    'Please.'
    """
    _check_level(level)
    rules = _PHRASE_RULES + (_STOPWORD_RULES if level == "stopwords" else ())
    out = text
    for pattern, replacement in rules:
        out = _apply(out, pattern, replacement)
    out = _tidy(out)
    return out if re.search(r"\w", out) else text


class RemoveFiller(Mutator):
    """Compress the plain text of one section per child with :func:`remove_filler`.

    Only :class:`Paragraph` children are rewritten (templates are left alone). A
    section whose text would not change is not a target, so every child differs from its
    parent. Descriptions give the saving by :func:`sammo_core.tokens.count_tokens`.

    >>> import asyncio, random
    >>> from sammo_core import GenerateText, MetaPrompt, Output, Section
    >>> p = Output(GenerateText(MetaPrompt([Section("Task", ["Please answer very briefly."])])))
    >>> [child] = asyncio.run(RemoveFiller().mutate(p, random.Random(0)))
    >>> child.description, child.program.child.prompt.children[0].children[0].text
    ("remove filler from 'Task' (-2 tokens)", 'Answer briefly.')
    """

    default_selector = "Section"

    def __init__(self, selector: str | None = None, *, level: str = "phrases") -> None:
        super().__init__(selector)
        _check_level(level)
        self.level = level

    def __repr__(self) -> str:
        return f"{self.name}(selector={self.selector!r}, level={self.level!r})"

    def _edits(self, match: Match) -> list[tuple[str, str, str]]:
        """``(absolute path, old text, new text)`` of the texts that would change."""
        edits = []
        for rel, text in text_children(match.node):
            new = remove_filler(text, self.level)
            if count_tokens(new) < count_tokens(text):  # a whitespace-only tidy saves nothing
                edits.append((join_path(match.path, rel), text, new))
        return edits

    def accepts(self, match: Match, program: Output) -> bool:
        return bool(self._edits(match))

    async def mutate(
        self,
        program: Output,
        rng: random.Random,
        n: int = 1,
        context: MutationContext | None = None,
    ) -> list[Mutation]:
        candidates: list[Edit] = []
        for match in self.targets(program):
            edits = self._edits(match)
            saved = sum(count_tokens(old) - count_tokens(new) for _, old, new in edits)
            candidates.append(
                (
                    f"remove filler from {node_label(match.node)} (-{saved} tokens)",
                    self._builder(program, edits),
                )
            )
        return choose_children(self, program, candidates, rng, n, context=context)

    @staticmethod
    def _builder(program: Output, edits: list[tuple[str, str, str]]) -> Callable[[], Output]:
        def build() -> Output:
            child = program
            for path, _, new in edits:
                child = replace(child, path, new)
            return child

        return build
