"""Operators on presentation: section format, data format, and inputs per call.

>>> import asyncio, random
>>> from sammo_core import GenerateText, InputData, MetaPrompt, Output, Section
>>> p = Output(GenerateText(MetaPrompt([Section("Task", ["Say yes."]), InputData()])))
>>> [m.description for m in asyncio.run(ChangeSectionFormat().mutate(p, random.Random(0), 5))]
['section format markdown -> plain', 'section format markdown -> xml', \
'section format markdown -> json']
>>> [m.description for m in asyncio.run(ChangeInputsPerCall().mutate(p, random.Random(0)))]
['inputs per call 1 -> 16']
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from mutators.base import Mutation, MutationContext, Mutator, replace
from mutators.structure import Candidate, _choose, _join
from renderers import DATA_FORMATS, SECTION_FORMATS
from sammo_core.components import Examples, InputData, MetaPrompt, Output
from sammo_core.errors import ConfigError
from sammo_core.selectors import Match, find

__all__ = ["ChangeDataFormat", "ChangeInputsPerCall", "ChangeSectionFormat"]


def _format_choices(
    kind: str, choices: Sequence[str] | None, valid: Mapping[str, Any]
) -> tuple[str, ...]:
    if choices is None:
        return tuple(valid)
    values = tuple(choices)
    if not values:
        raise ConfigError(f"choices ({kind}s) must not be empty; use some of: {', '.join(valid)}")
    for value in values:
        if value not in valid:
            raise ConfigError(f"unknown {kind} {value!r}; use one of: {', '.join(sorted(valid))}")
    return tuple(dict.fromkeys(values))


class ChangeSectionFormat(Mutator):
    """Lay the prompt out in another section format (:data:`renderers.SECTION_FORMATS`).

    >>> ChangeSectionFormat(choices=["yaml"])
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: unknown section format 'yaml'; use one of: json, markdown, \
plain, xml
    """

    default_selector = "MetaPrompt"

    def __init__(
        self, selector: str | None = None, *, choices: Sequence[str] | None = None
    ) -> None:
        super().__init__(selector)
        self.choices = _format_choices("section format", choices, SECTION_FORMATS)

    def __repr__(self) -> str:
        return f"{self.name}(selector={self.selector!r}, choices={self.choices})"

    def _formats(self, node: Any) -> list[str]:
        if not isinstance(node, MetaPrompt):
            return []
        return [f for f in self.choices if f != node.section_format]

    def accepts(self, match: Match, program: Output) -> bool:
        return bool(self._formats(match.node))

    async def mutate(
        self,
        program: Output,
        rng: random.Random,
        n: int = 1,
        context: MutationContext | None = None,
    ) -> list[Mutation]:
        candidates: list[Candidate] = [
            (
                f"section format {m.node.section_format} -> {fmt}",
                partial(replace, program, _join(m.path, "section_format"), fmt),
            )
            for m in self.targets(program)
            for fmt in self._formats(m.node)
        ]
        return _choose(self, program, candidates, rng, n)


class ChangeDataFormat(Mutator):
    """Write examples and inputs in another data format (:data:`renderers.DATA_FORMATS`).

    Sets ``MetaPrompt.data_format`` and resets to ``None`` every explicit ``data_format`` of
    the :class:`InputData` and :class:`Examples` that inherit from that prompt (not those
    under a nested prompt), so the change takes effect everywhere. With the ``auto`` parser
    the answers are read in the new format too; other parsers read raw text, which a data
    format's answer hint (e.g. JSON) would break, so by default only programs with
    ``parser="auto"`` are targets (``auto_parser_only=False`` lifts this).

    >>> import asyncio, random
    >>> from sammo_core import GenerateText, InputData, MetaPrompt, Output
    >>> p = Output(GenerateText(MetaPrompt([InputData(data_format="xml")])))
    >>> [child] = asyncio.run(ChangeDataFormat(choices=["json"]).mutate(p, random.Random(0)))
    >>> child.description, child.program.child.prompt.children[0].data_format
    ('data format plain -> json', None)
    """

    default_selector = "MetaPrompt"

    def __init__(
        self,
        selector: str | None = None,
        *,
        choices: Sequence[str] | None = None,
        auto_parser_only: bool = True,
    ) -> None:
        super().__init__(selector)
        self.choices = _format_choices("data format", choices, DATA_FORMATS)
        if not isinstance(auto_parser_only, bool):
            raise ConfigError(f"auto_parser_only must be True or False; got {auto_parser_only!r}")
        self.auto_parser_only = auto_parser_only

    def __repr__(self) -> str:
        return (
            f"{self.name}(selector={self.selector!r}, choices={self.choices}, "
            f"auto_parser_only={self.auto_parser_only})"
        )

    def _formats(self, node: Any) -> list[str]:
        if not isinstance(node, MetaPrompt):
            return []
        return [f for f in self.choices if f != node.data_format]

    def accepts(self, match: Match, program: Output) -> bool:
        if self.auto_parser_only and program.parser != "auto":
            return False
        return bool(self._formats(match.node))

    @staticmethod
    def _overrides(match: Match) -> list[str]:
        """Absolute paths of the explicit ``data_format`` fields that inherit from ``match``."""
        nested = [m.path for m in find(match.node, "MetaPrompt") if m.path]
        paths = []
        for m in find(match.node, "InputData, Examples"):
            if not isinstance(m.node, (InputData, Examples)) or m.node.data_format is None:
                continue
            if any(m.path.startswith(p + ".") for p in nested):
                continue  # a nested prompt sets its own format
            paths.append(_join(_join(match.path, m.path), "data_format"))
        return paths

    async def mutate(
        self,
        program: Output,
        rng: random.Random,
        n: int = 1,
        context: MutationContext | None = None,
    ) -> list[Mutation]:
        def build(match: Match, fmt: str) -> Output:
            child = replace(program, _join(match.path, "data_format"), fmt)
            for path in self._overrides(match):
                child = replace(child, path, None)
            return child

        candidates: list[Candidate] = [
            (
                f"data format {m.node.data_format} -> {fmt}",
                partial(build, m, fmt),
            )
            for m in self.targets(program)
            for fmt in self._formats(m.node)
        ]
        return _choose(self, program, candidates, rng, n)


class ChangeInputsPerCall(Mutator):
    """Pack another number of inputs into each call (``Output.inputs_per_call``).

    Only programs with ``parser="auto"`` are targets: it reads the answers back by id, while
    the other parsers read a single answer per call.

    >>> ChangeInputsPerCall(choices=(0,))
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: inputs per call must be ints >= 1; got 0 in (0,)
    """

    default_selector = "Output"

    def __init__(
        self, selector: str | None = None, *, choices: Sequence[int] = (1, 2, 4, 8, 16)
    ) -> None:
        super().__init__(selector)
        values = tuple(choices)
        if not values:
            raise ConfigError("choices (inputs per call) must not be empty; e.g. (1, 2, 4, 8)")
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"inputs per call must be ints >= 1; got {value!r} in {values}")
        self.choices = tuple(dict.fromkeys(values))

    def __repr__(self) -> str:
        return f"{self.name}(selector={self.selector!r}, choices={self.choices})"

    def _counts(self, node: Any) -> list[int]:
        if not isinstance(node, Output) or node.parser != "auto":
            return []
        return [c for c in self.choices if c != node.inputs_per_call]

    def accepts(self, match: Match, program: Output) -> bool:
        return bool(self._counts(match.node))

    async def mutate(
        self,
        program: Output,
        rng: random.Random,
        n: int = 1,
        context: MutationContext | None = None,
    ) -> list[Mutation]:
        candidates: list[Candidate] = [
            (
                f"inputs per call {m.node.inputs_per_call} -> {count}",
                partial(replace, program, _join(m.path, "inputs_per_call"), count),
            )
            for m in self.targets(program)
            for count in self._counts(m.node)
        ]
        return _choose(self, program, candidates, rng, n)
