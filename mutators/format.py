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

from collections.abc import Mapping, Sequence
from typing import Any

from mutators.base import join_path, replace
from mutators.fields import ChangeField, count_choices
from renderers import DATA_FORMATS, SECTION_FORMATS
from sammo_core.components import Examples, InputData, MetaPrompt, Output
from sammo_core.errors import ConfigError
from sammo_core.selectors import Match, find

__all__ = [
    "PREFIX_FORMATS",
    "ChangeDataFormat",
    "ChangeInputsPerCall",
    "ChangePrefixes",
    "ChangeSectionFormat",
]

#: Data formats that differ only in the prefixes of inputs and answers (``Input:``/``Output:``,
#: ``Q:``/``A:``, ``Sentence:``/``Label:``): the same layout, the same answer parsing.
PREFIX_FORMATS = ("plain", "qa", "sentence")


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
    return values


class ChangeSectionFormat(ChangeField[str]):
    """Lay the prompt out in another section format (:data:`renderers.SECTION_FORMATS`).

    >>> ChangeSectionFormat(choices=["yaml"])
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: unknown section format 'yaml'; use one of: json, markdown, \
plain, xml
    """

    default_selector = "MetaPrompt"
    node_type = MetaPrompt
    field = "section_format"
    label = "section format"

    def __init__(
        self, selector: str | None = None, *, choices: Sequence[str] | None = None
    ) -> None:
        super().__init__(
            selector, choices=_format_choices("section format", choices, SECTION_FORMATS)
        )


class ChangeDataFormat(ChangeField[str]):
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
    node_type = MetaPrompt
    field = "data_format"
    label = "data format"

    def __init__(
        self,
        selector: str | None = None,
        *,
        choices: Sequence[str] | None = None,
        auto_parser_only: bool = True,
    ) -> None:
        super().__init__(selector, choices=_format_choices("data format", choices, DATA_FORMATS))
        if not isinstance(auto_parser_only, bool):
            raise ConfigError(f"auto_parser_only must be True or False; got {auto_parser_only!r}")
        self.auto_parser_only = auto_parser_only

    def __repr__(self) -> str:
        return (
            f"{self.name}(selector={self.selector!r}, choices={self.choices}, "
            f"auto_parser_only={self.auto_parser_only}{self._prefs()})"
        )

    def eligible(self, node: Any, program: Output) -> bool:
        return not self.auto_parser_only or program.parser == "auto"

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
            paths.append(join_path(join_path(match.path, m.path), "data_format"))
        return paths

    def build(self, program: Output, match: Match, value: str) -> Output:
        child = super().build(program, match, value)
        for path in self._overrides(match):
            child = replace(child, path, None)
        return child


class ChangePrefixes(ChangeDataFormat):
    """Label inputs and answers with other prefixes: a data format of :data:`PREFIX_FORMATS`.

    A :class:`ChangeDataFormat` limited to formats that share one layout and differ in their
    words (``Input:``/``Output:``, ``Q:``/``A:``, ``Sentence:``/``Label:``), for prompts
    already in one of them: a small base model answers better after some prefixes than others,
    and in completion mode the prompt ends with the answer prefix (``A:``, ``Label:``).

    >>> import asyncio, random
    >>> from sammo_core import GenerateText, InputData, MetaPrompt, Output
    >>> p = Output(GenerateText(MetaPrompt([InputData()]), mode="completion"))
    >>> sorted(m.description for m in asyncio.run(ChangePrefixes().mutate(p, random.Random(0), 5)))
    ['prefixes plain -> qa', 'prefixes plain -> sentence']
    >>> json = Output(GenerateText(MetaPrompt([InputData()], data_format="json")))
    >>> ChangePrefixes().applicable(json)
    False
    """

    label = "prefixes"

    def __init__(
        self,
        selector: str | None = None,
        *,
        choices: Sequence[str] | None = PREFIX_FORMATS,
        auto_parser_only: bool = True,
    ) -> None:
        super().__init__(selector, choices=choices, auto_parser_only=auto_parser_only)

    def eligible(self, node: Any, program: Output) -> bool:
        return node.data_format in self.choices and super().eligible(node, program)


class ChangeInputsPerCall(ChangeField[int]):
    """Pack another number of inputs into each call (``Output.inputs_per_call``).

    Only programs with ``parser="auto"`` are targets: it reads the answers back by id, while
    the other parsers read a single answer per call.

    >>> ChangeInputsPerCall(choices=(0,))
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: inputs per call must be ints >= 1; got 0 in (0,)
    """

    default_selector = "Output"
    node_type = Output
    field = "inputs_per_call"
    label = "inputs per call"

    def __init__(
        self, selector: str | None = None, *, choices: Sequence[int] = (1, 2, 4, 8, 16)
    ) -> None:
        super().__init__(
            selector, choices=count_choices("inputs per call", choices, 1, "(1, 2, 4, 8)")
        )

    def eligible(self, node: Any, program: Output) -> bool:
        return bool(node.parser == "auto")
