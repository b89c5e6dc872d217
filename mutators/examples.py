"""Operators on in-context examples: which rows are shown, and how many.

>>> import asyncio, random
>>> from sammo_core import DataTable, Examples, GenerateText, MetaPrompt, Output, Section
>>> shots = DataTable(["a", "b", "c", "d"], ["1", "2", "3", "4"])
>>> p = Output(GenerateText(MetaPrompt([Section("Examples", [Examples(shots, n=2)])])))
>>> [m.description for m in asyncio.run(ChangeExampleCount().mutate(p, random.Random(0), n=9))]
['show 1 examples (was 2)', 'show 3 examples (was 2)', 'show 0 examples (was 2)']
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from mutators.base import Mutation, MutationContext, Mutator, ancestor, check_n, node_label, replace
from mutators.fields import ChangeField, count_choices
from sammo_core.components import Examples, Output
from sammo_core.errors import ConfigError
from sammo_core.graph import content_hash
from sammo_core.selectors import Match

__all__ = ["ChangeExampleCount", "SwapExamples"]


def _shown(examples: Examples) -> int:
    """How many rows ``examples`` shows."""
    size = len(examples.data)
    return size if examples.n is None else min(examples.n, size)


class SwapExamples(Mutator):
    """Resample the rows shown: random selection with a fresh seed drawn from ``rng``.

    ``first`` selections become ``random``; ``random`` ones get a different seed. A seed is
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
        if isinstance(max_seed, bool) or not isinstance(max_seed, int) or max_seed < 2:
            raise ConfigError(f"max_seed must be an int >= 2; got {max_seed!r}")
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
            fresh = node.clone(override={"selection": "random", "seed": seed})
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

    Counts above the table size are skipped, as is the count shown now.

    >>> ChangeExampleCount(choices=(1, -2))
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: example counts must be ints >= 0; got -2 in (1, -2)
    """

    default_selector = "Examples"
    node_type = Examples
    field = "n"

    def __init__(
        self, selector: str | None = None, *, choices: Sequence[int] = (0, 1, 2, 3, 5, 8)
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
