"""Operators on in-context examples: which rows are shown, how they are chosen, how many, and
in which order. A small base model is sensitive to all four: label-balanced draws, rows chosen
per input by similarity, the count and the mere order of the same rows move its accuracy.

>>> import asyncio, random
>>> from sammo_core import DataTable, Examples, GenerateText, MetaPrompt, Output, Section
>>> shots = DataTable(["a", "b", "c", "d"], ["1", "2", "3", "4"])
>>> p = Output(GenerateText(MetaPrompt([Section("Examples", [Examples(shots, n=2)])])))
>>> [m.description for m in asyncio.run(ChangeExampleCount().mutate(p, random.Random(0), n=9))]
['show 1 examples (was 2)', 'show 4 examples (was 2)', 'show 0 examples (was 2)']
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import partial
from typing import Any

from mutators.base import (
    Edit,
    Mutation,
    MutationContext,
    Mutator,
    ancestor,
    check_n,
    choose_children,
    node_label,
    replace,
)
from mutators.fields import ChangeField, count_choices
from sammo_core.components import EXAMPLE_SELECTIONS, Examples, Output
from sammo_core.errors import ConfigError
from sammo_core.graph import content_hash
from sammo_core.selectors import Match

__all__ = ["ChangeExampleCount", "ChangeExampleSelection", "ReorderExamples", "SwapExamples"]


def _shown(examples: Examples) -> int:
    """How many rows ``examples`` shows."""
    size = len(examples.data)
    return size if examples.n is None else min(examples.n, size)


def _check_max_seed(max_seed: int) -> None:
    if isinstance(max_seed, bool) or not isinstance(max_seed, int) or max_seed < 2:
        raise ConfigError(f"max_seed must be an int >= 2; got {max_seed!r}")


class SwapExamples(Mutator):
    """Resample the rows shown: a fresh seed drawn from ``rng``.

    ``first`` selections become ``random``; ``random`` and ``balanced`` ones keep their
    selection with a different seed (a balanced draw stays balanced). A seed is
    kept only if it shows rows (or an order of rows) that neither the parent nor an earlier
    child shows, so every child's prompt is new.
    ``knn`` selections are left alone (they already depend on the input), as are nodes that
    show fewer than one row or hold fewer than two. Seeds are drawn from ``range(max_seed)``.

    >>> import asyncio, random
    >>> from sammo_core import DataTable, Examples, GenerateText, MetaPrompt, Output
    >>> p = Output(GenerateText(MetaPrompt([Examples(DataTable(["a", "b", "c"]), n=2)])))
    >>> [m.description for m in asyncio.run(SwapExamples().mutate(p, random.Random(0)))]
    ['resample examples (seed 6890)']
    """

    default_selector = "Examples"

    def __init__(
        self, selector: str | None = None, *, max_seed: int = 10_000, attempts: int = 20
    ) -> None:
        super().__init__(selector)
        _check_max_seed(max_seed)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ConfigError(
                f"attempts (seed draws per child) must be an int >= 1; got {attempts!r}"
            )
        self.max_seed = max_seed
        self.attempts = attempts

    def __repr__(self) -> str:
        return f"{self.name}(selector={self.selector!r}, max_seed={self.max_seed})"

    def accepts(self, match: Match, program: Output) -> bool:
        node = match.node
        return (
            isinstance(node, Examples)
            and node.selection != "knn"
            and len(node.data) >= 2
            and _shown(node) >= 1
        )

    async def mutate(
        self,
        program: Output,
        rng: random.Random,
        n: int = 1,
        context: MutationContext | None = None,
    ) -> list[Mutation]:
        check_n(n)
        targets = self.targets(program)
        seen = {content_hash(program)}
        # Seeds that show the same rows in the same order make the same prompt: keep one.
        shown = {(m.path, m.node.selected().content_hash()) for m in targets}
        children: list[Mutation] = []
        draws = 0
        while targets and len(children) < n and draws < self.attempts * n:
            draws += 1
            match = rng.choice(targets)
            seed = rng.randrange(self.max_seed)
            node: Examples = match.node
            selection = "balanced" if node.selection == "balanced" else "random"
            fresh = node.clone(override={"selection": selection, "seed": seed})
            rows = (match.path, fresh.selected().content_hash())
            child = replace(program, match.path, fresh)
            digest = content_hash(child)
            if rows in shown or digest in seen:
                continue
            shown.add(rows)
            seen.add(digest)
            where = _where(program, match, len(targets))
            children.append(self._child(child, f"resample examples{where} (seed {seed})"))
        return children


def _where(program: Output, match: Match, n_targets: int) -> str:
    """`` in 'Title'`` naming the enclosing section when several nodes could be meant."""
    if n_targets < 2:
        return ""
    section = ancestor(program, match.path, "Section")
    return f" in {node_label(section.node)}" if section else f" at {match.path}"


class ChangeExampleCount(ChangeField[int]):
    """Show another number of examples, one of ``choices`` (0 means none).

    Counts above the table size are skipped, as is the count shown now. Any selection, ``knn``
    included (``k``, the rows retrieved per input). The default choices are the counts that
    matter to a small model: none, one, a balanced pair, four and eight.

    >>> ChangeExampleCount(choices=(1, -2))
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: example counts must be ints >= 0; got -2 in (1, -2)
    """

    default_selector = "Examples"
    node_type = Examples
    field = "n"

    def __init__(
        self, selector: str | None = None, *, choices: Sequence[int] = (0, 1, 2, 4, 8)
    ) -> None:
        super().__init__(
            selector, choices=count_choices("example counts", choices, 0, "(0, 1, 2, 4)")
        )

    def current(self, node: Any) -> int:
        return _shown(node)

    def options(self, node: Any) -> list[int]:
        return [count for count in super().options(node) if count <= len(node.data)]

    def describe(self, match: Match, value: int, program: Output, targets: Sequence[Match]) -> str:
        where = _where(program, match, len(targets))
        return f"show {value} examples{where} (was {self.current(match.node)})"


def _positions(order: str, order_seed: int, k: int) -> tuple[int, ...]:
    """Where each of ``k`` selected rows goes under an order (as ``Examples.selected`` does)."""
    positions = list(range(k))
    if order == "reversed":
        positions.reverse()
    elif order == "shuffled":
        random.Random(order_seed).shuffle(positions)
    return tuple(positions)


class ReorderExamples(Mutator):
    """Show the same rows in another order: as selected, reversed, or shuffled with a seed.

    Sets ``Examples.order`` (and ``order_seed``, drawn from ``rng`` in ``range(max_seed)``).
    Orders that put the rows where the parent or an earlier candidate already does are
    skipped, so every child's prompt is new. Nodes that show fewer than two rows are left
    alone. ``shuffles``: how many shuffled orders each node offers besides the fixed ones.
    For ``knn``, ``reversed`` puts the most similar row last, next to the input.

    >>> import asyncio, random
    >>> from sammo_core import DataTable, Examples, GenerateText, MetaPrompt, Output
    >>> p = Output(GenerateText(MetaPrompt([Examples(DataTable(["a", "b", "c"]), n=3)])))
    >>> children = asyncio.run(ReorderExamples().mutate(p, random.Random(0), n=9))
    >>> [m.description for m in children]
    ['shuffle the examples (seed 663)', 'shuffle the examples (seed 6311)', 'reverse the examples']
    >>> children[2].program.child.prompt.children[0].label()
    "Examples(n=3, selection='first', order='reversed', rows=3)"
    """

    default_selector = "Examples"

    def __init__(
        self, selector: str | None = None, *, max_seed: int = 10_000, shuffles: int = 4
    ) -> None:
        super().__init__(selector)
        _check_max_seed(max_seed)
        if isinstance(shuffles, bool) or not isinstance(shuffles, int) or shuffles < 0:
            raise ConfigError(
                f"shuffles (shuffled orders per node) must be an int >= 0; got {shuffles!r}"
            )
        self.max_seed = max_seed
        self.shuffles = shuffles

    def __repr__(self) -> str:
        return (
            f"{self.name}(selector={self.selector!r}, max_seed={self.max_seed}, "
            f"shuffles={self.shuffles})"
        )

    def accepts(self, match: Match, program: Output) -> bool:
        return isinstance(match.node, Examples) and _shown(match.node) >= 2

    async def mutate(
        self,
        program: Output,
        rng: random.Random,
        n: int = 1,
        context: MutationContext | None = None,
    ) -> list[Mutation]:
        check_n(n)
        targets = self.targets(program)
        candidates: list[Edit] = []
        for match in targets:
            node: Examples = match.node
            k = _shown(node)
            taken = {_positions(node.order, node.order_seed, k)}
            where = _where(program, match, len(targets))
            options = [("as_selected", 0), ("reversed", 0)]
            options += [("shuffled", rng.randrange(self.max_seed)) for _ in range(self.shuffles)]
            for order, seed in options:
                positions = _positions(order, seed, k)
                if positions in taken:
                    continue
                taken.add(positions)
                fresh = node.clone(override={"order": order, "order_seed": seed})
                description = {
                    "as_selected": f"show the examples{where} in selection order",
                    "reversed": f"reverse the examples{where}",
                    "shuffled": f"shuffle the examples{where} (seed {seed})",
                }[order]
                candidates.append((description, partial(replace, program, match.path, fresh)))
        return choose_children(self, program, candidates, rng, n, context=context)


class ChangeExampleSelection(ChangeField[str]):
    """Choose the rows another way: ``first``, ``random``, ``balanced`` or ``knn``.

    See :class:`~sammo_core.components.Examples`: ``balanced`` draws the gold labels equally
    often, ``knn`` retrieves the rows most similar to each input (BM25). The seed, count and
    order stay. A fixed selection that would show the same rows in the same order as the
    node does now is skipped; nodes that show no row, or hold fewer than two, are left alone.

    >>> import asyncio, random
    >>> from sammo_core import DataTable, Examples, GenerateText, MetaPrompt, Output
    >>> pool = DataTable(["a", "b", "c", "d"], ["yes", "yes", "no", "no"])
    >>> p = Output(GenerateText(MetaPrompt([Examples(pool, n=2)])))
    >>> children = asyncio.run(ChangeExampleSelection().mutate(p, random.Random(0), n=9))
    >>> sorted(m.description for m in children)
    ['example selection first -> balanced', 'example selection first -> knn', \
'example selection first -> random']
    >>> ChangeExampleSelection(choices=["best"])
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: unknown example selection 'best'; use one of: balanced, \
first, knn, random
    """

    default_selector = "Examples"
    node_type = Examples
    field = "selection"
    label = "example selection"

    def __init__(
        self, selector: str | None = None, *, choices: Sequence[str] = EXAMPLE_SELECTIONS
    ) -> None:
        values = tuple(choices)
        if not values:
            raise ConfigError(
                f"choices (example selections) must not be empty; use some of: "
                f"{', '.join(EXAMPLE_SELECTIONS)}"
            )
        for value in values:
            if value not in EXAMPLE_SELECTIONS:
                raise ConfigError(
                    f"unknown example selection {value!r}; use one of: "
                    f"{', '.join(sorted(EXAMPLE_SELECTIONS))}"
                )
        super().__init__(selector, choices=values)

    def eligible(self, node: Any, program: Output) -> bool:
        return len(node.data) >= 2 and _shown(node) >= 1

    def options(self, node: Any) -> list[str]:
        values = super().options(node)
        if node.selection == "knn":
            return values
        now = node.selected().content_hash()
        return [
            v
            for v in values
            if v == "knn" or node.clone(override={"selection": v}).selected().content_hash() != now
        ]

    def describe(self, match: Match, value: str, program: Output, targets: Sequence[Match]) -> str:
        where = _where(program, match, len(targets))
        return f"example selection{where} {match.node.selection} -> {value}"
