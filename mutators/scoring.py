"""Operators on how a scored answer is read: the verbalizer and calibration.

Both apply to a program whose call lists its ``labels`` (rank classification, see
:mod:`sammo_core.scoring`):

- :class:`ChangeVerbalizer` changes the words the model is shown and scored for the labels
  (``yes``/``no``, ``true``/``false``, ``A``/``B``, ...); the examples' outputs are rewritten
  to the new words, and the answer is mapped back to the gold label.
- :class:`ToggleCalibration` switches content-free calibration on or off.

>>> import asyncio, random
>>> from sammo_core import DataTable, Examples, GenerateText, InputData, MetaPrompt, Output
>>> pool = DataTable(["Is fire hot?", "Is ice hot?"], ["True", "False"])
>>> program = Output(GenerateText(MetaPrompt([Examples(pool, n=2), InputData()]),
...                               labels=["False", "True"]))
>>> children = asyncio.run(ChangeVerbalizer().mutate(program, random.Random(0), n=9))
>>> for m in sorted(children, key=lambda m: m.description):
...     print(m.description, list(m.program.child.prompt.children[0].data.outputs))
verbalizer ['False', 'True'] -> ['B', 'A'] ['A', 'B']
verbalizer ['False', 'True'] -> ['false', 'true'] ['true', 'false']
verbalizer ['False', 'True'] -> ['no', 'yes'] ['yes', 'no']
>>> [m.description for m in asyncio.run(ToggleCalibration().mutate(program, random.Random(0)))]
['calibration none -> content_free']
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import partial
from typing import Any

import pyglove as pg

from mutators.base import Edit, Mutation, MutationContext, Mutator, choose_children
from mutators.fields import ChangeField
from sammo_core.components import Examples, GenerateText, Output
from sammo_core.data import DataTable
from sammo_core.errors import ConfigError
from sammo_core.selectors import Match, find

__all__ = ["DEFAULT_VERBALIZERS", "ChangeVerbalizer", "ToggleCalibration"]

#: Word sets for two labels, the positive word first. A binary task's labels are matched to
#: them by meaning when one label reads as positive (True, yes, plausible, entailment, ...).
DEFAULT_VERBALIZERS: tuple[tuple[str, ...], ...] = (
    ("yes", "no"),
    ("true", "false"),
    ("A", "B"),
)
_POSITIVE = frozenset({"true", "yes", "plausible", "positive", "entailment", "correct", "1"})


def _words_for(labels: Sequence[str], words: Sequence[str]) -> list[str] | None:
    """``words`` laid against ``labels``: positive word to the positive label when a label
    reads as positive, else in order; ``None`` when the counts differ."""
    if len(words) != len(labels):
        return None
    positive = [i for i, label in enumerate(labels) if label.strip().casefold() in _POSITIVE]
    if len(labels) == 2 and len(positive) == 1:
        first = positive[0]
        return [words[0] if i == first else words[1] for i in range(2)]
    return list(words)


class ChangeVerbalizer(Mutator):
    """Show and score other words for the call's labels; examples show the new words.

    ``choices`` are word sets (see :data:`DEFAULT_VERBALIZERS`); a set whose size differs
    from the label count is skipped, and the labels themselves are always a choice (no
    verbalizer).
    """

    default_selector = "GenerateText"

    def __init__(
        self, selector: str | None = None, *, choices: Sequence[Sequence[str]] = DEFAULT_VERBALIZERS
    ) -> None:
        super().__init__(selector)
        self.choices = tuple(tuple(c) for c in choices)
        for words in self.choices:
            if len(set(words)) != len(words) or not all(isinstance(w, str) and w for w in words):
                raise ConfigError(f"verbalizer choice {list(words)} must be distinct words")

    def _options(self, call: GenerateText) -> list[list[str]]:
        labels = [str(x) for x in call.labels]
        now = [str(x) for x in call.verbalizer] or labels
        options = [labels] + [w for c in self.choices if (w := _words_for(labels, c)) is not None]
        unique: list[list[str]] = []
        for words in options:
            if words != now and words not in unique:
                unique.append(words)
        return unique

    def accepts(self, match: Match, program: Output) -> bool:
        node = match.node
        return (
            isinstance(node, GenerateText)
            and match.path == "child"
            and len(node.labels) >= 2
            and bool(self._options(node))
        )

    def _build(self, program: Output, words: list[str]) -> Output:
        call = program.child
        labels = [str(x) for x in call.labels]
        shown = [str(x) for x in call.verbalizer] or labels
        # Whatever an example shows now (a label or an earlier word) -> the new word.
        mapping = dict(zip(shown, words, strict=True))
        mapping.update(zip(labels, words, strict=True))
        override: dict[str, Any] = {"child.verbalizer": [] if words == labels else words}
        for match in find(program, "Examples"):
            node: Examples = match.node
            table: DataTable = node.data
            outputs = [mapping.get(str(o), o) if o is not None else o for o in table.outputs]
            if outputs != list(table.outputs):
                override[f"{match.path}.data"] = DataTable(
                    list(table.inputs), outputs, constants=dict(table.constants)
                )
        child: Output = pg.clone(program, deep=True, override=override)
        return child

    async def mutate(
        self,
        program: Output,
        rng: random.Random,
        n: int = 1,
        context: MutationContext | None = None,
    ) -> list[Mutation]:
        candidates: list[Edit] = []
        for match in self.targets(program):
            now = [str(x) for x in match.node.verbalizer] or [str(x) for x in match.node.labels]
            for words in self._options(match.node):
                candidates.append(
                    (f"verbalizer {now} -> {words}", partial(self._build, program, words))
                )
        return choose_children(self, program, candidates, rng, n, context=context)


class ToggleCalibration(ChangeField[str]):
    """Switch content-free calibration (``Output.calibration``) on or off, for a program whose
    call lists its labels."""

    node_type = Output
    field = "calibration"
    label = "calibration"

    def __init__(
        self, selector: str | None = None, *, choices: Sequence[str] = ("none", "content_free")
    ) -> None:
        super().__init__(selector, choices=choices)

    def eligible(self, node: Any, program: Output) -> bool:
        return bool(node.child.labels)

    def build(self, program: Output, match: Match, value: str) -> Output:
        # A prior given with the program was fitted for the other setting: fit it anew.
        child: Output = pg.clone(
            program, deep=True, override={"calibration": value, "label_prior": []}
        )
        return child
