"""Prompt files tagged in XML: block elements become sections titled by the tag name.

:func:`parse_xml` (also importable from :mod:`sammo_core.prompt_files`, which describes the
round trip) reads a whole file; :func:`read_tagged` is the reading it shares with templates
laid out in XML. A block element starts at a line start, ends at a line end and is closed;
anything else (inline elements, elements with attributes, unclosed tags) stays text.

>>> print(parse_xml("<task>\\nBe brief.\\n</task>\\nAnswer <b>yes</b> or no."))
MetaPrompt(section_format='xml')
├── Section 'task'
│   └── 'Be brief.'
└── 'Answer <b>yes</b> or no.'
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections.abc import Iterator

from sammo_core.components import MetaPrompt
from sammo_core.jinja_blocks import JinjaScan, jinja_complete
from sammo_core.prompt_paragraphs import (
    MAX_SECTION_DEPTH,
    InputNode,
    RawSection,
    normalize_newlines,
    split_paragraphs,
    to_meta_prompt,
    too_deep_error,
)

__all__ = ["parse_xml", "read_tagged"]

# Attributes are matched greedily and trimmed in code: a lazy group followed by ``\s*`` takes
# quadratic time on a tag left open before a long run of spaces.
_TAG = re.compile(r"<(/?)([A-Za-z_][\w.:-]*)((?:\s[^<>]*)?)>")
_TITLE_ATTR = re.compile(r'\s*title\s*=\s*"([^"]*)"\s*')
_ENTITY = re.compile(r"&(?:(amp|lt|gt|quot|apos)|#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6}));")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
# The xml section format escapes "<" opening a section tag (and "&" that would read as that
# escape); text read here is unescaped the same way so that rendering restores it.
_LT_ESCAPED = re.compile(r"&lt;(?=/?(?i:section)\b)")
_AMP_ESCAPED = re.compile(r"&amp;(?=(?:amp;)*lt;/?(?i:section)\b)")


def parse_xml(text: str, *, input_node: InputNode = "template") -> MetaPrompt:
    """Read an XML-tagged prompt: block elements become sections titled by tag name.

    A block element starts at a line start and ends at a line end (whitespace aside), has no
    attributes (except ``<section title="...">``, read as the xml section format writes it)
    and is closed. Its content is read the same way; text between elements becomes paragraphs.
    Placeholders as in :func:`~sammo_core.prompt_files.parse_markdown`.

    >>> from sammo_core.prompt_files import render_prompt
    >>> meta = parse_xml("<instructions>\\nBe brief.\\n</instructions>\\n<input>{{input}}</input>")
    >>> print(render_prompt(meta, "Hi"))
    <section title="instructions">
    Be brief.
    </section>
    <BLANKLINE>
    <section title="input">
    Hi
    </section>
    """
    root = RawSection(None, read_tagged(normalize_newlines(text), jinja=False))
    return to_meta_prompt(root, "xml", jinja=False, input_node=input_node)


@dataclasses.dataclass
class _Element:
    name: str
    attrs: str
    open_start: int
    open_end: int
    close_start: int = -1
    close_end: int = -1


@dataclasses.dataclass(frozen=True)
class _Elements:
    """The closed elements of a text, sorted by start. They nest properly (a closing tag
    leaves the elements opened inside it unclosed), so the elements closed inside an element's
    content are those a reading of that content alone finds: the text is read once, however
    deep it nests."""

    items: list[_Element]
    starts: list[int]

    @classmethod
    def of(cls, text: str) -> _Elements:
        closed = sorted(_closed_elements(text), key=lambda e: e.open_start)
        return cls(closed, [e.open_start for e in closed])

    def deepest(self, text: str) -> _Element | None:
        """The first element that would be a section nested more than
        :data:`MAX_SECTION_DEPTH` deep, found in one pass (before any jinja is compiled)."""
        stack: list[_Element] = []  # the sections enclosing the element at hand
        for element in self.items:
            while stack and stack[-1].close_end <= element.open_start:
                stack.pop()
            lo, hi = (stack[-1].open_end, stack[-1].close_start) if stack else (0, len(text))
            if _title(element) is not None and _own_lines(text, element, lo, hi):
                if len(stack) >= MAX_SECTION_DEPTH:
                    return element
                stack.append(element)
        return None

    def top(self, lo: int, hi: int) -> Iterator[_Element]:
        """The elements in ``text[lo:hi]`` not inside another one, in document order."""
        i = bisect.bisect_left(self.starts, lo)
        while i < len(self.items) and self.starts[i] < hi:
            element = self.items[i]
            yield element
            i = bisect.bisect_left(self.starts, element.close_end, lo=i + 1)


def _closed_elements(text: str) -> list[_Element]:
    """The elements of ``text`` whose tags are closed, in the order they close."""
    stack: list[_Element] = []
    # Positions in ``stack`` of the open elements of each name, so a closing tag finds its
    # element without scanning the stack (thousands of unclosed tags stay linear).
    open_at: dict[str, list[int]] = {}
    closed: list[_Element] = []
    for tag in _TAG.finditer(text):
        closing, name, attrs = tag.groups()
        if attrs.endswith("/"):  # self-closing
            continue
        if not closing:
            open_at.setdefault(name, []).append(len(stack))
            stack.append(_Element(name, attrs.rstrip(), tag.start(), tag.end()))
            continue
        if not open_at.get(name):
            continue
        depth = open_at[name][-1]
        element = stack[depth]  # elements opened inside it stay unclosed (text)
        element.close_start, element.close_end = tag.span()
        closed.append(element)
        for inner in stack[depth:]:
            open_at[inner.name].pop()
        del stack[depth:]
    return closed


def _title(element: _Element) -> str | None:
    if element.name == "section":
        match = _TITLE_ATTR.fullmatch(element.attrs)
        return None if match is None else _unescape_entities(match.group(1))
    return element.name if not element.attrs.strip() else None


def _unescape_entities(text: str) -> str:
    def entity(match: re.Match[str]) -> str:
        name, dec, hexa = match.groups()
        if name:
            return _ENTITIES[name]
        code = int(dec) if dec else int(hexa, 16)
        # A surrogate is no character (it cannot be encoded): it stays as written, like a
        # number past the last code point.
        return chr(code) if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else match[0]

    return _ENTITY.sub(entity, text)


def _own_lines(text: str, element: _Element, lo: int, hi: int) -> bool:
    """Whether ``element`` is alone on its lines of ``text[lo:hi]``."""
    line_start = max(text.rfind("\n", lo, element.open_start) + 1, lo)
    line_end = text.find("\n", element.close_end, hi)
    after = text[element.close_end : hi if line_end == -1 else line_end]
    return not text[line_start : element.open_start].strip() and not after.strip()


def read_tagged(
    text: str,
    *,
    jinja: bool,
    elements: _Elements | None = None,
    lo: int = 0,
    hi: int | None = None,
    depth: int = 0,
) -> list[RawSection | str]:
    """The sections and paragraphs of ``text[lo:hi]`` (all of ``text`` by default)."""
    if elements is None:
        elements = _Elements.of(text)
        deepest = elements.deepest(text)
        if deepest is not None:
            raise too_deep_error(f"tag <{deepest.name}>")
    hi = len(text) if hi is None else hi
    children: list[RawSection | str] = []
    pending = lo
    scan, scanned = JinjaScan(), lo  # the text from ``pending`` up to ``scanned``
    for element in elements.top(lo, hi):
        title = _title(element)
        if title is None or not _own_lines(text, element, lo, hi):
            continue
        inner = text[element.open_end : element.close_start]
        before = text[pending : element.open_start]
        if jinja:
            scan.feed(text[scanned : element.open_start])
            scanned = element.open_start
            if not (jinja_complete([before], scan) and jinja_complete([inner])):
                continue  # inside a jinja block: the element is template text
            scan, scanned = JinjaScan(), element.close_end
        children.extend(_text_paragraphs(before, jinja))
        if depth >= MAX_SECTION_DEPTH:
            raise too_deep_error(f"tag <{element.name}>")
        content = read_tagged(
            text,
            jinja=jinja,
            elements=elements,
            lo=element.open_end,
            hi=element.close_start,
            depth=depth + 1,
        )
        children.append(RawSection(title, content))
        pending = element.close_end
    children.extend(_text_paragraphs(text[pending:hi], jinja))
    return children


def _text_paragraphs(text: str, jinja: bool) -> list[RawSection | str]:
    text = _AMP_ESCAPED.sub("&", _LT_ESCAPED.sub("<", text))
    return [p for p in split_paragraphs(text, headings=False, jinja=jinja) if isinstance(p, str)]
