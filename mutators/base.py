"""The mutation-operator interface and the copy-then-edit helpers every operator uses.

An operator takes a selector for the nodes it may touch, says whether it is ``applicable`` to
a program, and ``mutate``s it into children. It never changes its argument: every edit goes
through :func:`replace`, :func:`set_list` or :func:`remove`, which deep-copy first. Each child
carries a one-line description of the change and the operator's name.

>>> import asyncio, random
>>> from sammo_core import GenerateText, MetaPrompt, Output, Section
>>> from mutators.structure import DropSection
>>> program = Output(GenerateText(MetaPrompt([Section("A", ["x"]), Section("B", ["y"])])))
>>> children = asyncio.run(DropSection().mutate(program, random.Random(0), n=2))
>>> sorted(c.description for c in children)
["drop section 'A'", "drop section 'B'"]
>>> [s.title for s in program.child.prompt.children]  # untouched
['A', 'B']
"""

from __future__ import annotations

import abc
import dataclasses
import random
import re
from collections.abc import Sequence
from typing import Any

import pyglove as pg

from sammo_core.components import Component, InputData, Output
from sammo_core.data import DataTable
from sammo_core.errors import ConfigError
from sammo_core.results import ResultTable
from sammo_core.runners.base import LLMRequest, Runner
from sammo_core.selectors import Match, find

__all__ = [
    "Mutation",
    "MutationContext",
    "Mutator",
    "ScoredProgram",
    "contains_input",
    "remove",
    "replace",
    "set_list",
    "split_list_path",
    "text_children",
]


@dataclasses.dataclass(frozen=True)
class Mutation:
    """One child program and how it was made."""

    program: Output
    description: str
    operator: str


@dataclasses.dataclass(frozen=True)
class ScoredProgram:
    """An earlier candidate and its validation score (for history-based proposers)."""

    program: Output
    score: float


@dataclasses.dataclass(frozen=True)
class MutationContext:
    """What operators may use besides the program itself.

    ``runner`` proposes text (it may be a stronger model than the task's). ``train`` holds
    labelled rows (instruction induction, example pools). ``results`` is the parent's latest
    result table (its errors drive text gradients). ``history`` lists scored earlier
    candidates, best last.
    """

    runner: Runner | None = None
    train: DataTable | None = None
    results: ResultTable | None = None
    history: tuple[ScoredProgram, ...] = ()

    def require_runner(self, operator: str) -> Runner:
        if self.runner is None:
            raise ConfigError(
                f"{operator} asks an LLM to propose text but the mutation context has no "
                "runner: pass proposer=... (or the task runner) to the search"
            )
        return self.runner

    async def ask(self, operator: str, prompt: str, *, seed: int, temperature: float = 0.7) -> str:
        """Send one proposal prompt to the proposer runner and return its stripped text."""
        request = LLMRequest.from_prompt(prompt, temperature=temperature, seed=seed)
        result = await self.require_runner(operator).generate(request)
        return result.text.strip()


class Mutator(abc.ABC):
    """Base class of mutation operators.

    Subclasses set ``default_selector`` and implement :meth:`mutate`; most also narrow
    :meth:`accepts` (e.g. "sections that do not hold the input").
    """

    default_selector: str = "*"

    def __init__(self, selector: str | None = None) -> None:
        self.selector = selector or self.default_selector

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"{self.name}(selector={self.selector!r})"

    def accepts(self, match: Match, program: Output) -> bool:
        """Whether this operator can edit the matched node (default: yes)."""
        return True

    def targets(self, program: Output) -> list[Match]:
        """Nodes of ``program`` this operator may edit."""
        return [m for m in find(program, self.selector) if self.accepts(m, program)]

    def applicable(self, program: Output) -> bool:
        """Whether :meth:`mutate` can produce at least one child."""
        return bool(self.targets(program))

    @abc.abstractmethod
    async def mutate(
        self,
        program: Output,
        rng: random.Random,
        n: int = 1,
        context: MutationContext | None = None,
    ) -> list[Mutation]:
        """Return up to ``n`` distinct children of ``program`` (fewer if fewer exist)."""

    def _child(self, program: Output, description: str) -> Mutation:
        return Mutation(program, description, self.name)


# -- copy-then-edit helpers --------------------------------------------------------------------


def replace(program: Output, path: str, value: Any) -> Output:
    """A deep copy of ``program`` with the value at ``path`` replaced.

    >>> from sammo_core import GenerateText, Output, Paragraph
    >>> p = Output(GenerateText(Paragraph("a")))
    >>> replace(p, "child.prompt.text", "b").child.prompt.text, p.child.prompt.text
    ('b', 'a')
    """
    copy = pg.clone(program, deep=True)
    copy.rebind({path: value}, skip_notification=True)
    return copy  # type: ignore[no-any-return]


_LIST_ITEM = re.compile(r"^(.*)\[(\d+)\]$")


def split_list_path(path: str) -> tuple[str, int]:
    """``"a.children[2]"`` -> ``("a.children", 2)``; a path that is not a list item raises."""
    m = _LIST_ITEM.match(path)
    if not m:
        raise ConfigError(f"path {path!r} does not address a list item")
    return m.group(1), int(m.group(2))


def set_list(program: Output, list_path: str, items: Sequence[Any]) -> Output:
    """A deep copy of ``program`` whose list at ``list_path`` holds ``items``."""
    copy = pg.clone(program, deep=True)
    fresh = [pg.clone(i, deep=True) if isinstance(i, pg.Symbolic) else i for i in items]
    copy.rebind({list_path: fresh}, skip_notification=True)
    return copy  # type: ignore[no-any-return]


def remove(program: Output, path: str) -> Output:
    """A deep copy of ``program`` without the list item at ``path``."""
    list_path, index = split_list_path(path)
    items = list(program.sym_get(list_path))
    del items[index]
    return set_list(program, list_path, items)


def contains_input(node: Component) -> bool:
    """Whether ``node`` is or holds the program's input (dropping it would break the program)."""
    return isinstance(node, InputData) or bool(find(node, "InputData"))


def text_children(node: Component) -> list[tuple[str, str]]:
    """``(field_path, text)`` of a node's plain-text children: strings and Paragraphs.

    Paths are relative to ``node`` (e.g. ``"children[0]"`` or ``"children[1].text"``).
    """
    out: list[tuple[str, str]] = []
    from sammo_core.components import Paragraph

    for name in node.child_fields:
        value = node.sym_getattr(name)
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            base = name if index is None else f"{name}[{index}]"
            if isinstance(item, str):
                out.append((base, item))
            elif isinstance(item, Paragraph):
                out.append((f"{base}.text", item.text))
    return out
