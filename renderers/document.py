"""The neutral document tree that section formats render.

A document is a sequence of blocks: :class:`Text` paragraphs and :class:`SectionBlock` nodes with a
title and child blocks. A section whose title is ``None`` groups blocks without a heading: every
format renders just its children.

>>> doc = (SectionBlock("Task", (Text("Answer yes or no."),)), Text("Is water wet?"))
>>> normalize(doc) == doc
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from renderers.errors import RenderError

__all__ = ["Block", "SectionBlock", "Text", "normalize"]

#: How :func:`normalize` joins adjacent paragraphs, and how formats separate them.
PARAGRAPH_BREAK = "\n\n"


@dataclass(frozen=True, slots=True)
class Text:
    """A paragraph of text (it may span several lines).

    >>> Text("Be brief.")
    Text(text='Be brief.')
    """

    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"Text.text must be a str, got {type(self.text).__name__}")


@dataclass(frozen=True, slots=True)
class SectionBlock:
    """A titled group of blocks; ``title=None`` groups blocks without a heading.

    ``children`` may be given as any sequence; it is stored as a tuple.

    >>> SectionBlock("Rules", [Text("Be brief.")])
    SectionBlock(title='Rules', children=(Text(text='Be brief.'),))
    """

    title: str | None
    children: tuple[Block, ...] = ()

    def __post_init__(self) -> None:
        if self.title is not None and not isinstance(self.title, str):
            raise TypeError(f"SectionBlock.title must be a str or None, got {self.title!r}")
        children = tuple(self.children)
        for child in children:
            if not isinstance(child, Text | SectionBlock):
                raise TypeError(
                    f"Section children must be Text or SectionBlock blocks, got {child!r}"
                )
        object.__setattr__(self, "children", children)


Block: TypeAlias = Text | SectionBlock


def normalize(blocks: Sequence[Block]) -> tuple[Block, ...]:
    """Return the canonical form of a document, which every section format round trips.

    The canonical form: each text is stripped of surrounding whitespace; empty texts are dropped;
    untitled sections (``title=None``) are replaced by their children; adjacent texts under one
    parent are merged into one, joined by a blank line. Titles are kept as they are (markdown and
    plain formats normalize them further, see :meth:`renderers.SectionFormat.normalize`).

    >>> normalize([Text(" a "), SectionBlock(None, (Text("b"),)), Text("  "), SectionBlock("T")])
    (Text(text='a\\n\\nb'), SectionBlock(title='T', children=()))
    """
    out: list[Block] = []
    for block in blocks:
        if isinstance(block, Text):
            _append_text(out, block.text)
        elif isinstance(block, SectionBlock):
            children = normalize(block.children)
            if block.title is not None:
                out.append(SectionBlock(block.title, children))
                continue
            for child in children:
                if isinstance(child, Text):
                    _append_text(out, child.text)
                else:
                    out.append(child)
        else:
            raise RenderError(f"a document holds Text and SectionBlock blocks, got {block!r}")
    return tuple(out)


def _append_text(out: list[Block], text: str) -> None:
    text = text.strip()
    if not text:
        return
    if out and isinstance(out[-1], Text):
        out[-1] = Text(out[-1].text + PARAGRAPH_BREAK + text)
    else:
        out.append(Text(text))
