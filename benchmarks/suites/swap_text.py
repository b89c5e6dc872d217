""":class:`SwapText`: an operator that chooses among fixed texts for a section (``rag-parsing``'s
DSL descriptions).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from mutators.base import Mutation, MutationContext, Mutator, replace, text_children
from sammo_core.components import Output, Section
from sammo_core.errors import ConfigError
from sammo_core.selectors import Match


class SwapText(Mutator):
    """Replace the plain text of a matched section with another of ``choices``.

    For texts a search should choose among (the DSL descriptions of ``rag-parsing``): the
    child's description names the choice by its key.

    >>> import asyncio
    >>> from sammo_core.components import GenerateText, InputData, MetaPrompt
    >>> p = Output(GenerateText(MetaPrompt([Section("DSL", ["short"], id="dsl"), InputData()])))
    >>> op = SwapText("Section#dsl", {"short": "short", "long": "long text"})
    >>> [m.description for m in asyncio.run(op.mutate(p, random.Random(0), n=3))]
    ["section 'DSL': short -> long"]
    """

    def __init__(self, selector: str, choices: Mapping[str, str]) -> None:
        super().__init__(selector)
        if len(choices) < 2:
            raise ConfigError(f"SwapText needs at least two choices; got {list(choices)}")
        self.choices = dict(choices)

    def __repr__(self) -> str:
        return f"{self.name}(selector={self.selector!r}, choices={sorted(self.choices)})"

    def _current(self, node: Any) -> str | None:
        if not isinstance(node, Section):
            return None
        texts = [text for _, text in text_children(node)]
        return "\n".join(texts) if texts else None

    def accepts(self, match: Match, program: Output) -> bool:
        return self._current(match.node) is not None

    async def mutate(
        self,
        program: Output,
        rng: random.Random,
        n: int = 1,
        context: MutationContext | None = None,
    ) -> list[Mutation]:
        options: list[tuple[Match, str]] = []
        for match in self.targets(program):
            current = self._current(match.node)
            options += [(match, key) for key, text in self.choices.items() if text != current]
        rng.shuffle(options)
        children = []
        for match, key in options[:n]:
            before = next(
                (k for k, t in self.choices.items() if t == self._current(match.node)), "custom"
            )
            child = replace(program, f"{match.path}.children", [self.choices[key]])
            children.append(self._child(child, f"section {match.node.title!r}: {before} -> {key}"))
        return children
