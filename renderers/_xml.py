"""XML escaping and a small tolerant XML reader (for model answers, which are often malformed).

Text is escaped minimally so that prompts stay readable: ``<`` only where it would open a tag,
``&`` only where it would read as an entity. Both steps are inverted exactly by :func:`unescape`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_ENTITY_BODY = r"(?:amp|lt|gt|quot|apos|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});"
_ENTITY = re.compile(
    rf"&(?={_ENTITY_BODY})(?:(amp|lt|gt|quot|apos)|#([0-9]+)|#[xX]([0-9a-fA-F]+));"
)
_AMP_BEFORE_ENTITY = re.compile(rf"&(?={_ENTITY_BODY})")
_TAG_OPENER = re.compile(r"<(?=/?[A-Za-z_])")
_ATTR_CHARS = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;"}
_ATTR_CHARS |= {"\r": "&#13;", "\t": "&#9;"}
_ATTR_ESCAPE = re.compile("[" + "".join(_ATTR_CHARS) + "]")

_TAG = re.compile(
    r"<(/?)([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*(/?)>"
)
_ATTR = re.compile(r"([A-Za-z_][\w.:-]*)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
#: Nesting beyond this depth is read as text rather than as nested fields.
MAX_VALUE_DEPTH = 64


def _entity(match: re.Match[str]) -> str:
    name, dec, hexa = match.groups()
    if name:
        return _NAMED[name]
    code = int(dec) if dec else int(hexa, 16)
    return chr(code) if code <= 0x10FFFF else match.group(0)


def unescape(text: str) -> str:
    """Replace the five XML entities and numeric character references."""
    return _ENTITY.sub(_entity, text)


def escape_text(text: str) -> str:
    """Escape element text: ``&`` before an entity name, ``<`` before a tag name."""
    return _TAG_OPENER.sub("&lt;", _AMP_BEFORE_ENTITY.sub("&amp;", text))


def escape_attr(text: str) -> str:
    """Escape an attribute value for double quotes (newlines and tabs as references)."""
    return _ATTR_ESCAPE.sub(lambda m: _ATTR_CHARS[m.group(0)], text)


@dataclass(eq=False, slots=True)
class Element:
    """An element read by :func:`parse_elements`; ``start:end`` spans its content."""

    tag: str
    attrs: dict[str, str]
    start: int
    end: int = -1
    closed: bool = False
    has_text: bool = False
    children: list[Element] = field(default_factory=list)


def parse_elements(text: str) -> list[Element]:
    """Read the top-level elements of ``text``; never raises.

    Text outside tags is allowed anywhere. An end tag closes the nearest open element of that
    name (case-insensitively), leaving elements opened inside it unclosed; a stray end tag is
    text; elements still open at the end stay unclosed (``closed=False``).
    """
    root = Element("", {}, 0)
    stack = [root]
    pos = 0
    for match in _TAG.finditer(text):
        if text[pos : match.start()].strip():
            stack[-1].has_text = True
        pos = match.end()
        closing, name, attrs, self_closing = match.groups()
        if closing:
            lowered = name.lower()
            depth = next(
                (j for j in range(len(stack) - 1, 0, -1) if stack[j].tag.lower() == lowered), 0
            )
            if depth == 0:
                stack[-1].has_text = True
                continue
            element = stack[depth]
            element.end, element.closed = match.start(), True
            del stack[depth:]
            continue
        element = Element(name, _attrs(attrs), match.end())
        stack[-1].children.append(element)
        if self_closing:
            element.end, element.closed = match.end(), True
        else:
            stack.append(element)
    if text[pos:].strip():
        stack[-1].has_text = True
    return root.children


def _attrs(text: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for match in _ATTR.finditer(text):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        attrs.setdefault(match.group(1).lower(), unescape(value))
    return attrs


def find_all(elements: list[Element], tag: str) -> list[Element]:
    """Closed elements named ``tag`` (any case), in document order, not looking inside them."""
    found: list[Element] = []
    todo = list(reversed(elements))
    while todo:
        element = todo.pop()
        if element.tag.lower() == tag:
            if element.closed:
                found.append(element)
        else:
            todo.extend(reversed(element.children))
    return found


def element_value(element: Element, text: str, depth: int = 0) -> Any:
    """A closed element's value: a dict of its child elements, or its unescaped, stripped text.

    Children become a dict only when there is no other text beside them and all are closed;
    ``<field name="k">`` gives key ``k``; the first of repeated keys wins.
    """
    children = element.children
    if (
        children
        and not element.has_text
        and depth < MAX_VALUE_DEPTH
        and all(child.closed for child in children)
    ):
        value: dict[str, Any] = {}
        for child in children:
            key = child.attrs.get("name", child.tag) if child.tag == "field" else child.tag
            if key not in value:
                value[key] = element_value(child, text, depth + 1)
        return value
    return unescape(text[element.start : element.end]).strip()
