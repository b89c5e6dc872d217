"""Operators that set one field of a node to another of a few values.

:class:`ChangeField` is their common shape: for every matched node of its type, a child per
value in ``choices`` other than the current one, described as ``"{label} {old} -> {new}"``
and picked by :func:`~mutators.base.choose_children`. A subclass names the node type, the
field and the label, validates its ``choices`` and passes them on:

>>> import asyncio, random
>>> from sammo_core import GenerateText, Output, Paragraph
>>> class ChangeTemperature(ChangeField[float]):
...     node_type = GenerateText
...     field = "temperature"
...     label = "temperature"
>>> op = ChangeTemperature(choices=(0.0, 0.7, 1.0, 0.7))
>>> op
ChangeTemperature(selector='*', choices=(0.0, 0.7, 1.0))
>>> p = Output(GenerateText(Paragraph("Say yes.")))
>>> sorted(m.description for m in asyncio.run(op.mutate(p, random.Random(0), n=5)))
['temperature 0.0 -> 0.7', 'temperature 0.0 -> 1.0']
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import partial
from typing import Any, ClassVar, Generic, TypeVar

from mutators.base import (
    Edit,
    Mutation,
    MutationContext,
    Mutator,
    choose_children,
    join_path,
    replace,
)
from sammo_core.completion import answer_slot_problem
from sammo_core.components import Component, Output
from sammo_core.errors import ConfigError
from sammo_core.selectors import Match

__all__ = ["ChangeField", "count_choices"]

V = TypeVar("V")


class ChangeField(Mutator, Generic[V]):
    """Set :attr:`field` of the matched :attr:`node_type` nodes to another value in ``choices``.

    ``choices`` keep their order; repeats are dropped. Hooks, each with a working default:
    :meth:`eligible` (whether a node may change at all), :meth:`current` (the value compared
    with the choices), :meth:`options` (the values a node may take), :meth:`describe` and
    :meth:`build` (the child for one value).
    """

    #: The nodes this operator edits; others matched by the selector are skipped.
    node_type: ClassVar[type[Component]]
    #: The name of the edited field of ``node_type``.
    field: ClassVar[str]
    #: How descriptions name the field: ``"{label} {old} -> {new}"``.
    label: ClassVar[str]

    def __init__(self, selector: str | None = None, *, choices: Sequence[V]) -> None:
        super().__init__(selector)
        self.choices: tuple[V, ...] = tuple(dict.fromkeys(choices))
        #: Weights by value (as text) that favour values that won elsewhere; empty: none.
        self.preferences: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"{self.name}(selector={self.selector!r}, choices={self.choices}{self._prefs()})"

    def _prefs(self) -> str:
        """The preferences as they join the repr (and so a search's fingerprint), if any."""
        return f", preferences={self.preferences}" if self.preferences else ""

    @property
    def choice_key(self) -> str:
        """The name of the edited field in a priors file: ``NodeType.field``."""
        return f"{self.node_type.__name__}.{self.field}"

    def set_preferences(self, counts: dict[str, float]) -> None:
        """Draw values that won elsewhere first more often: value ``v`` gets weight
        ``1 + counts[str(v)]`` (others 1), so no value is ever ruled out. Empty: uniform.

        >>> from mutators.format import ChangeSectionFormat
        >>> op = ChangeSectionFormat()
        >>> op.set_preferences({"xml": 3})
        >>> op
        ChangeSectionFormat(selector='MetaPrompt', choices=('json', 'markdown', 'plain', 'xml'), \
preferences={'xml': 3.0})
        """
        clean: dict[str, float] = {}
        for value, count in counts.items():
            if isinstance(count, bool) or not isinstance(count, (int, float)) or not count >= 0:
                raise ConfigError(
                    f"preference count of {value!r} for {self.name} must be a number >= 0; "
                    f"got {count!r}"
                )
            if count > 0:
                clean[str(value)] = float(count)
        self.preferences = clean

    def eligible(self, node: Any, program: Output) -> bool:
        """Whether ``node`` (a ``node_type`` in ``program``) may change at all (default: yes)."""
        return True

    def current(self, node: Any) -> Any:
        """The value of ``node`` that the choices must differ from (default: the field)."""
        return node.sym_getattr(self.field)

    def options(self, node: Any) -> list[V]:
        """The values ``node`` may take instead of its current one, in ``choices`` order."""
        now = self.current(node)
        return [value for value in self.choices if value != now]

    def accepts(self, match: Match, program: Output) -> bool:
        node = match.node
        return (
            isinstance(node, self.node_type)
            and self.eligible(node, program)
            and bool(self.allowed(program, match))
        )

    def allowed(self, program: Output, match: Match) -> list[V]:
        """:meth:`options` less the values whose child loses the answer slot of a
        completion-mode program (:func:`~mutators.base.keeps_answer_slot`); built only for one.
        """
        values = self.options(match.node)
        if program.child.mode != "completion" or answer_slot_problem(program) is not None:
            return values
        return [v for v in values if answer_slot_problem(self.build(program, match, v)) is None]

    def describe(self, match: Match, value: V, program: Output, targets: Sequence[Match]) -> str:
        """The child's description; ``targets`` (every node edited) help say which one."""
        return f"{self.label} {self.current(match.node)} -> {value}"

    def build(self, program: Output, match: Match, value: V) -> Output:
        """A copy of ``program`` with the matched node's field set to ``value``."""
        return replace(program, join_path(match.path, self.field), value)

    async def mutate(
        self,
        program: Output,
        rng: random.Random,
        n: int = 1,
        context: MutationContext | None = None,
    ) -> list[Mutation]:
        targets = self.targets(program)
        pairs = [(m, value) for m in targets for value in self.allowed(program, m)]
        candidates: list[Edit] = [
            (self.describe(m, value, program, targets), partial(self.build, program, m, value))
            for m, value in pairs
        ]
        weights = (
            [1.0 + self.preferences.get(str(value), 0.0) for _, value in pairs]
            if self.preferences
            else None
        )
        return choose_children(self, program, candidates, rng, n, context=context, weights=weights)


def count_choices(what: str, choices: Sequence[int], minimum: int, example: str) -> tuple[int, ...]:
    """``choices`` as a tuple after checking it holds ints >= ``minimum`` and is not empty.

    ``what`` names the counts in messages; ``example`` shows a valid value.

    >>> count_choices("inputs per call", (1, 0), 1, "(1, 2, 4, 8)")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: inputs per call must be ints >= 1; got 0 in (1, 0)
    """
    values = tuple(choices)
    if not values:
        raise ConfigError(f"choices ({what}) must not be empty; e.g. {example}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{what} must be ints >= {minimum}; got {value!r} in {values}")
    return values
