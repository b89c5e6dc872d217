"""Structural operators: drop, reorder and repeat sections, drop paragraphs.

Every operator here enumerates its candidate edits and lets
:func:`~mutators.base.choose_children` visit them in an order drawn from the given ``rng`` and
keep the first ``n`` whose programs are new (distinct content hashes, none equal to the parent).
A section "holds the input" (:func:`~mutators.base.contains_input`) when it contains
:class:`InputData` or a :class:`Template` that reads the input; such sections are never dropped,
repeated or (by default) moved, so every child still shows the model its input.

>>> import asyncio, random
>>> from sammo_core import GenerateText, InputData, MetaPrompt, Output, Section
>>> program = Output(GenerateText(MetaPrompt([
...     Section("Task", ["Answer yes or no."]),
...     Section("Rules", ["Be brief.", "Be polite."]),
...     Section("Input", [InputData()]),
... ])))
>>> [m.description for m in asyncio.run(DropSection().mutate(program, random.Random(0), n=5))]
["drop section 'Rules'", "drop section 'Task'"]
>>> [m.description for m in asyncio.run(ReorderSections().mutate(program, random.Random(0)))]
["swap sections 'Task' and 'Rules'"]
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial

import pyglove as pg

from mutators.base import (
    Edit,
    Mutation,
    MutationContext,
    Mutator,
    ancestor,
    choose_children,
    contains_input,
    is_list_item,
    join_path,
    node_label,
    remove,
    set_list,
    shorten,
    split_list_path,
    text_children,
)
from sammo_core.components import Component, Examples, Output, Section
from sammo_core.errors import ConfigError
from sammo_core.graph import content_hash
from sammo_core.selectors import Match, find

__all__ = ["DropParagraph", "DropSection", "ReorderSections", "RepeatSection"]


# -- operators -----------------------------------------------------------------------------


class DropSection(Mutator):
    """Remove one section; a child per droppable section.

    A section is droppable unless it holds the input or is the only item left in its list
    (an empty prompt or section is never a useful candidate).

    >>> import asyncio, random
    >>> from sammo_core import GenerateText, InputData, MetaPrompt, Output, Section
    >>> p = Output(GenerateText(MetaPrompt([Section("A", ["x"]), Section("In", [InputData()])])))
    >>> [m.description for m in asyncio.run(DropSection().mutate(p, random.Random(1), n=3))]
    ["drop section 'A'"]
    """

    default_selector = "Section"

    def accepts(self, match: Match, program: Output) -> bool:
        if not isinstance(match.node, Section) or not is_list_item(match.path):
            return False
        siblings = program.sym_get(split_list_path(match.path)[0])
        return len(siblings) > 1 and not contains_input(match.node)

    async def mutate(
        self,
        program: Output,
        rng: random.Random,
        n: int = 1,
        context: MutationContext | None = None,
    ) -> list[Mutation]:
        candidates: list[Edit] = [
            (f"drop section {node_label(m.node)}", partial(remove, program, m.path))
            for m in self.targets(program)
        ]
        return choose_children(self, program, candidates, rng, n, context=context)


class DropParagraph(Mutator):
    """Remove one plain-text child (a :class:`Paragraph`, maybe written as a string) of a section.

    A paragraph is never dropped when it is its section's only child: that would leave an
    empty section (use :class:`DropSection` to remove whole sections).

    >>> import asyncio, random
    >>> from sammo_core import GenerateText, MetaPrompt, Output, Paragraph, Section
    >>> rules = Section("Rules", ["Be brief.", Paragraph("Be kind.")])
    >>> p = Output(GenerateText(MetaPrompt([rules])))
    >>> sorted(m.description for m in asyncio.run(DropParagraph().mutate(p, random.Random(0), 5)))
    ["drop paragraph 'Be brief.' from 'Rules'", "drop paragraph 'Be kind.' from 'Rules'"]
    """

    default_selector = "Section"

    def _items(self, match: Match) -> list[tuple[str, str]]:
        """``(absolute list-item path, text)`` of the droppable paragraphs of a node."""
        items: list[tuple[str, str]] = []
        for rel, text in text_children(match.node):
            item = rel.removesuffix(".text")
            if not is_list_item(item):
                continue  # e.g. GenerateText.system: not a list, nothing to drop from
            field = split_list_path(item)[0]
            if len(match.node.sym_getattr(field)) > 1:
                items.append((join_path(match.path, item), text))
        return items

    def accepts(self, match: Match, program: Output) -> bool:
        return bool(self._items(match))

    async def mutate(
        self,
        program: Output,
        rng: random.Random,
        n: int = 1,
        context: MutationContext | None = None,
    ) -> list[Mutation]:
        candidates: list[Edit] = [
            (
                f"drop paragraph {shorten(text)!r} from {node_label(m.node)}",
                partial(remove, program, path),
            )
            for m in self.targets(program)
            for path, text in self._items(m)
        ]
        return choose_children(self, program, candidates, rng, n, context=context)


class ReorderSections(Mutator):
    """Permute the sections of a prompt: swap two, or move one past at least one other.

    Only :class:`Section` children move, within the slots sections occupy; other children
    stay where they are. With ``fixed_input=True`` (the default) sections holding the input
    keep their place too, since a prompt that ends with its input is the usual, sound layout.
    Descriptions: ``swap sections 'A' and 'B'``, ``move section 'A' after 'C'``,
    ``move section 'C' before 'A'``.

    >>> import asyncio, random
    >>> from sammo_core import GenerateText, MetaPrompt, Output, Section
    >>> p = Output(GenerateText(MetaPrompt([Section(t, ["x" + t]) for t in "ABC"])))
    >>> sorted(m.description for m in asyncio.run(ReorderSections().mutate(p, random.Random(0), 9)))
    ["move section 'A' after 'C'", "move section 'C' before 'A'", "swap sections 'A' and 'B'", \
"swap sections 'A' and 'C'", "swap sections 'B' and 'C'"]
    """

    default_selector = "MetaPrompt"

    def __init__(self, selector: str | None = None, *, fixed_input: bool = True) -> None:
        super().__init__(selector)
        if not isinstance(fixed_input, bool):
            raise ConfigError(f"fixed_input must be True or False; got {fixed_input!r}")
        self.fixed_input = fixed_input

    def __repr__(self) -> str:
        return f"{self.name}(selector={self.selector!r}, fixed_input={self.fixed_input})"

    def _slots(self, node: Component) -> list[int]:
        if "children" not in node.child_fields:
            return []
        return [
            i
            for i, child in enumerate(node.sym_getattr("children"))
            if isinstance(child, Section) and not (self.fixed_input and contains_input(child))
        ]

    def accepts(self, match: Match, program: Output) -> bool:
        return len(self._slots(match.node)) >= 2

    def _candidates(self, program: Output, match: Match) -> list[Edit]:
        children = list(match.node.sym_getattr("children"))
        slots = self._slots(match.node)
        sections = [children[s] for s in slots]
        list_path = join_path(match.path, "children")

        def build(order: list[Component | str]) -> Callable[[], Output]:
            items = list(children)
            for slot, section in zip(slots, order, strict=True):
                items[slot] = section
            return partial(set_list, program, list_path, items)

        out: list[Edit] = []
        for a in range(len(sections)):
            for b in range(a + 1, len(sections)):
                order = list(sections)
                order[a], order[b] = order[b], order[a]
                names = f"{node_label(sections[a])} and {node_label(sections[b])}"
                out.append((f"swap sections {names}", build(order)))
        for a in range(len(sections)):
            for b in range(len(sections)):
                if abs(a - b) < 2:
                    continue  # moving past one neighbour is a swap
                order = list(sections)
                order.insert(b, order.pop(a))
                where = "after" if b > a else "before"
                desc = f"move section {node_label(sections[a])} {where} {node_label(sections[b])}"
                out.append((desc, build(order)))
        return out

    async def mutate(
        self,
        program: Output,
        rng: random.Random,
        n: int = 1,
        context: MutationContext | None = None,
    ) -> list[Mutation]:
        candidates = [c for m in self.targets(program) for c in self._candidates(program, m)]
        return choose_children(self, program, candidates, rng, n, context=context)


class RepeatSection(Mutator):
    """Repeat a key instruction near the end: copy a section just before the input.

    The copy goes into the section's :class:`MetaPrompt`, right before the last top-level
    item that holds the input (or at the end when none does), so the model reads the
    instruction again just before the data. Sections holding the input or examples are never
    repeated, nor one whose copy already sits at that spot. The copy has no ``id``, so
    id selectors still match one node.

    >>> import asyncio, random
    >>> from sammo_core import GenerateText, InputData, MetaPrompt, Output, Section
    >>> p = Output(GenerateText(MetaPrompt([
    ...     Section("Task", ["Say yes."]), Section("Note", ["Be brief."]),
    ...     Section("Input", [InputData()])])))
    >>> [m.description for m in asyncio.run(RepeatSection().mutate(p, random.Random(0), n=3))]
    ["repeat section 'Task' before 'Input'"]
    """

    default_selector = "Section"

    def _plan(self, match: Match, program: Output) -> tuple[str, int, str] | None:
        """``(list path, insert index, where)`` for a copy of the matched section, or None."""
        section = match.node
        if not isinstance(section, Section) or contains_input(section):
            return None
        if find(section, "Examples") or isinstance(section, Examples):
            return None
        meta = ancestor(program, match.path, "MetaPrompt")
        if meta is None:
            return None
        items = list(meta.node.sym_getattr("children"))
        holders = [i for i, item in enumerate(items) if contains_input(item)]
        index = holders[-1] if holders else len(items)
        where = f"before {node_label(items[index])}" if holders else "at the end"
        before = items[index - 1] if index > 0 else None
        if isinstance(before, Component) and content_hash(before) == content_hash(section):
            return None
        return join_path(meta.path, "children"), index, where

    def accepts(self, match: Match, program: Output) -> bool:
        return self._plan(match, program) is not None

    async def mutate(
        self,
        program: Output,
        rng: random.Random,
        n: int = 1,
        context: MutationContext | None = None,
    ) -> list[Mutation]:
        candidates: list[Edit] = []
        for match in self.targets(program):
            plan = self._plan(match, program)
            assert plan is not None  # targets() kept only sections with a plan
            list_path, index, where = plan
            items = list(program.sym_get(list_path))
            items.insert(index, pg.clone(match.node, deep=True, override={"id": None}))
            candidates.append(
                (
                    f"repeat section {node_label(match.node)} {where}",
                    partial(set_list, program, list_path, items),
                )
            )
        return choose_children(self, program, candidates, rng, n, context=context)
