"""The trees of a POML file: its XML as written, and the sections and paragraphs read from it.

:func:`read_tree` parses the markup (``expat``) into :class:`Node` elements, tag and attribute
names compared as POML does (lowercased, without dashes or underscores; aliases to one name).
The reader in :mod:`sammo_core.poml_files` makes of them :class:`Sec` and :class:`Para` items,
whose parts are text or :class:`Dyn` expressions that read the input.

>>> root = read_tree('<poml><task caption-style="bold">Sum {{ a }}.</task></poml>', "x.poml")
>>> task = root.children[0]
>>> task.tag, task.attrs, task.children
('task', {'captionstyle': 'bold'}, ['Sum {{ a }}.'])
>>> strip_parts(["  Sum ", Dyn("a", frozenset({"a"}), ()), ". "])
['Sum ', Dyn(expr='a', names=frozenset({'a'}), static=()), '.']
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any
from xml.parsers import expat

from sammo_core.errors import ConfigError

__all__ = ["Dyn", "Item", "Node", "Para", "Sec", "read_tree", "strip_parts"]

# Tag names are compared lowercased without dashes or underscores (POML takes kebab and camel).
_ALIASES = {
    "paragraph": "p", "captionedparagraph": "cp", "listitem": "item", "bold": "b",
    "italic": "i", "strike": "s", "strikethrough": "s", "underline": "u", "inline": "span",
    "newline": "br", "header": "h", "subcontent": "section", "question": "qa",
    "exampleset": "examples", "exampleinput": "input", "exampleoutput": "output",
    "text": "poml",
}  # fmt: skip


@dataclasses.dataclass
class Node:
    """An element as written: tag (aliases resolved), attributes, line and content."""

    tag: str
    written: str  # the tag as written, for messages
    attrs: dict[str, str]
    line: int
    children: list[Node | str] = dataclasses.field(default_factory=list)


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def read_tree(text: str, where: str) -> Node:
    """The ``<poml>`` element of ``text``; markup that is not well-formed raises
    :class:`ConfigError` naming ``where`` and the line."""
    if not re.match(r"\s*<poml[\s>/]", text):
        raise ConfigError(
            f"{where}: a POML file starts with <poml>; wrap the prompt in <poml>...</poml>"
        )
    parser = expat.ParserCreate()
    stack: list[Node] = []
    root: list[Node] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        tag = _key(name)
        node = Node(
            _ALIASES.get(tag, tag),
            name,
            {_key(k): v for k, v in attrs.items()},
            parser.CurrentLineNumber,
        )
        (stack[-1].children if stack else root).append(node)
        stack.append(node)

    def end(name: str) -> None:
        stack.pop()

    def characters(data: str) -> None:
        if stack:
            children = stack[-1].children
            if children and isinstance(children[-1], str):
                children[-1] += data
            else:
                children.append(data)

    def doctype(*args: Any) -> None:
        raise ConfigError(f"{where}: a POML file has no <!DOCTYPE>; remove it")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    parser.StartDoctypeDeclHandler = doctype
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        raise ConfigError(
            f"{where}, line {exc.lineno}: not well-formed POML "
            f"({expat.errors.messages[exc.code]}); quote attribute values and close every tag"
        ) from None
    return root[0]


@dataclasses.dataclass(frozen=True)
class Dyn:
    """An expression that reads the input: kept for a :class:`Template`."""

    expr: str
    names: frozenset[str]
    static: tuple[tuple[str, Any], ...]


@dataclasses.dataclass
class Para:
    """A paragraph as read: text and expressions."""

    parts: list[str | Dyn]
    inline: bool  # text written directly in a component, not a block of its own


@dataclasses.dataclass
class Sec:
    """A section as read, titled by its caption."""

    title: str
    items: list[Para | Sec]


Item = Para | Sec


def strip_parts(parts: Sequence[str | Dyn]) -> list[str | Dyn]:
    """``parts`` without the whitespace at either end."""
    parts = list(parts)
    while parts and isinstance(parts[0], str) and not parts[0].strip(" \t\r\n"):
        parts.pop(0)
    while parts and isinstance(parts[-1], str) and not parts[-1].strip(" \t\r\n"):
        parts.pop()
    if parts and isinstance(parts[0], str):
        parts[0] = parts[0].lstrip(" \t\r\n")
    if parts and isinstance(parts[-1], str):
        parts[-1] = parts[-1].rstrip(" \t\r\n")
    return parts
