"""Section formats: how a document's titles and paragraphs are laid out in the prompt.

Each format is a render/parse pair: ``fmt.parse(fmt.render(doc)) == fmt.normalize(doc)`` for
every document. :func:`renderers.normalize` defines the canonical form (texts stripped, empty
texts dropped, untitled sections replaced by their children, adjacent texts joined by a blank
line); markdown and plain text add the normalization their layout forces (see each class).

>>> doc = [SectionBlock("Task", (Text("Answer yes or no."),)), Text("Is water wet?")]
>>> print(get_section_format("xml").render(doc))
<section title="Task">
Answer yes or no.
</section>
<BLANKLINE>
Is water wet?
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from renderers import _xml
from renderers._text import LineEscaper, dumps
from renderers.document import PARAGRAPH_BREAK, Block, SectionBlock, Text, normalize
from renderers.errors import RenderError, UnknownFormatError
from renderers.registry import Registry

__all__ = [
    "SECTION_FORMATS",
    "JSONFormat",
    "MarkdownFormat",
    "PlainFormat",
    "SectionFormat",
    "XMLFormat",
    "get_section_format",
]


class SectionFormat(ABC):
    """Renders a document to prompt text and parses such text back.

    Subclasses set ``name`` and implement :meth:`render` and :meth:`parse`; where their layout
    cannot tell two documents apart they extend :meth:`normalize` to say which one comes back.

    >>> fmt = MarkdownFormat()
    >>> doc = [SectionBlock("Task", (Text("Be brief."),))]
    >>> fmt.parse(fmt.render(doc)) == fmt.normalize(doc)
    True
    """

    name: ClassVar[str]

    @abstractmethod
    def render(self, blocks: Sequence[Block]) -> str:
        """The prompt text of a document."""

    @abstractmethod
    def parse(self, text: str) -> tuple[Block, ...]:
        """The document that :meth:`render` wrote, in canonical form (see :meth:`normalize`)."""

    def normalize(self, blocks: Sequence[Block]) -> tuple[Block, ...]:
        """The canonical form of ``blocks`` that this format round trips (:func:`normalize`)."""
        return normalize(blocks)

    def escape_text(self, text: str) -> str:
        """How the paragraph ``text`` (stripped, not empty) is written in this format's output.

        Each format writes a document's texts through this method, one text (or one run of
        texts joined by a blank line) at a time, and its escaping never reaches across a blank
        line. So a paragraph rendered once with a placeholder can be filled in later by
        replacing the placeholder with ``escape_text(paragraph)``: this is how a compiled
        program renders its per-input parts without rendering the whole document again.

        >>> MarkdownFormat().escape_text("# Not a heading")
        '\\\\# Not a heading'
        >>> JSONFormat().escape_text('Say "hi"')
        'Say \\\\"hi\\\\"'

        A format that does not override it raises :class:`NotImplementedError`; programs in
        it are then rendered by walking the document for every call (the same text, slower).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement escape_text()")

    def text_after_last(self, depth: int) -> str:
        """What this format writes after a document's last text, found ``depth`` sections deep.

        ``""`` when the text ends the document, as a prompt that a base model continues needs
        (its answer cue, ``Output:``, must come last); otherwise the closing brackets or tags.
        Found by rendering a probe, so every format, a plugin's too, answers alike.

        >>> MarkdownFormat().text_after_last(1), XMLFormat().text_after_last(0)
        ('', '')
        >>> XMLFormat().text_after_last(1)
        '\\n</section>'
        """
        probe = "SAMMO_PROBE_TEXT"
        blocks: tuple[Block, ...] = (Text(probe),)
        for _ in range(depth):
            blocks = (SectionBlock("Probe", blocks),)
        text = self.render(blocks)
        return text[text.rindex(probe) + len(probe) :]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))


# -- layout normalizations shared by markdown and plain text -----------------------------------


def _collapse_title(title: str) -> str | None:
    return " ".join(title.split()) or None


def _retitle(blocks: Sequence[Block], fix: Callable[[str], str | None]) -> list[Block]:
    return [
        SectionBlock(None if b.title is None else fix(b.title), tuple(_retitle(b.children, fix)))
        if isinstance(b, SectionBlock)
        else b
        for b in blocks
    ]


def _sink(blocks: tuple[Block, ...]) -> tuple[Block, ...]:
    """Move each text that follows a section into that section's last, deepest descendant."""
    out: list[Block] = []
    for block in blocks:
        if isinstance(block, SectionBlock):
            out.append(SectionBlock(block.title, _sink(block.children)))
        elif out and isinstance(out[-1], SectionBlock):
            out[-1] = _append_deep(out[-1], block)
        else:
            out.append(block)
    return tuple(out)


def _append_deep(section: SectionBlock, text: Text) -> SectionBlock:
    children = list(section.children)
    if children and isinstance(children[-1], SectionBlock):
        children[-1] = _append_deep(children[-1], text)
    elif children and isinstance(children[-1], Text):
        children[-1] = Text(children[-1].text + PARAGRAPH_BREAK + text.text)
    else:
        children.append(text)
    return SectionBlock(section.title, tuple(children))


def _heading_normalize(blocks: Sequence[Block]) -> tuple[Block, ...]:
    return _sink(normalize(_retitle(blocks, _collapse_title)))


class _Builder:
    """Builds a tree from headings met in reading order (depth 1 = top level)."""

    def __init__(self) -> None:
        self.root: list[Block] = []
        self._stack: list[tuple[str | None, list[Block]]] = []

    @property
    def depth(self) -> int:
        return len(self._stack)

    def add(self, block: Block) -> None:
        (self._stack[-1][1] if self._stack else self.root).append(block)

    def open(self, title: str | None, depth: int) -> None:
        self.close_to(min(depth, self.depth + 1) - 1)
        self._stack.append((title, []))

    def close_to(self, depth: int) -> None:
        while self.depth > depth:
            title, children = self._stack.pop()
            self.add(SectionBlock(title, tuple(children)))


class MarkdownFormat(SectionFormat):
    """Markdown: ``#`` headings by depth (``#``, ``##``, ...), paragraphs split by blank lines.

    Normalization beyond :func:`normalize`: a title's whitespace runs become single spaces and
    a blank title counts as untitled; a text that follows a section inside the same parent is
    read as part of that section (its last, deepest descendant), since markdown has no way to
    close a section. A text line that would read as a heading (``#`` characters, then a space or
    the line end) is written with a leading backslash, the markdown escape; lines of backslashes
    and such a heading get one more backslash, so every text round trips.

    >>> tone = SectionBlock("Tone", (Text("Polite."),))
    >>> print(MarkdownFormat().render([SectionBlock("Task", (Text("Be brief."), tone))]))
    # Task
    <BLANKLINE>
    Be brief.
    <BLANKLINE>
    ## Tone
    <BLANKLINE>
    Polite.
    """

    name = "markdown"
    _HEADING = re.compile(r"(#+)(?: (.*))?")
    _ESCAPER = LineEscaper(r"#+(?: .*)?\Z")

    def normalize(self, blocks: Sequence[Block]) -> tuple[Block, ...]:
        return _heading_normalize(blocks)

    def render(self, blocks: Sequence[Block]) -> str:
        return PARAGRAPH_BREAK.join(self._block(b, 1) for b in self.normalize(blocks))

    def escape_text(self, text: str) -> str:
        return self._ESCAPER.escape_lines(text)

    def _block(self, block: Block, depth: int) -> str:
        if isinstance(block, Text):
            return self.escape_text(block.text)
        parts = [f"{'#' * depth} {block.title}"]
        parts += [self._block(child, depth + 1) for child in block.children]
        return PARAGRAPH_BREAK.join(parts)

    def parse(self, text: str) -> tuple[Block, ...]:
        builder = _Builder()
        paragraph: list[str] = []
        for line in text.split("\n"):
            heading = self._HEADING.fullmatch(line)
            if heading is None:
                paragraph.append(self._ESCAPER.unescape(line))
                continue
            builder.add(Text("\n".join(paragraph)))
            paragraph = []
            builder.open(_collapse_title(heading.group(2) or ""), len(heading.group(1)))
        builder.add(Text("\n".join(paragraph)))
        builder.close_to(0)
        return self.normalize(builder.root)


class PlainFormat(SectionFormat):
    """Plain text: each title on its own line, underlined by depth (``=``, ``-``, ``~``, ...).

    Titles are underlined with ``=`` at the top level, then ``-``, ``~``, ``^``, ``*``, ``+``;
    paragraphs are split by blank lines. A title is a line that starts a paragraph and is
    followed by an underline (a line of one repeated underline character).

    Normalization: as in :class:`MarkdownFormat` (titles' whitespace collapsed, blank titles
    untitled, texts after a section read as part of it); and sections nested deeper than six
    levels come back as level-six siblings following their parent, because six underline
    characters exist. Ambiguity: a text line made only of one underline character (``---``,
    ``===``) would read as an underline, so it is written with a leading backslash (and lines
    of backslashes and such characters get one more backslash).

    >>> print(PlainFormat().render([SectionBlock("Task", (Text("Be brief."),))]))
    Task
    ====
    <BLANKLINE>
    Be brief.
    """

    name = "plain"
    MARKERS: ClassVar[str] = "=-~^*+"
    _UNDERLINE = re.compile(r"(=+|-+|~+|\^+|\*+|\++)")
    _ESCAPER = LineEscaper(r"(?:=+|-+|~+|\^+|\*+|\++)\Z")

    def normalize(self, blocks: Sequence[Block]) -> tuple[Block, ...]:
        return _clamp(_heading_normalize(blocks), 1, len(self.MARKERS))

    def render(self, blocks: Sequence[Block]) -> str:
        return PARAGRAPH_BREAK.join(self._block(b, 1) for b in self.normalize(blocks))

    def escape_text(self, text: str) -> str:
        return self._ESCAPER.escape_lines(text)

    def _block(self, block: Block, depth: int) -> str:
        if isinstance(block, Text):
            return self.escape_text(block.text)
        title = block.title or ""
        parts = [f"{title}\n{self.MARKERS[depth - 1] * max(len(title), 3)}"]
        parts += [self._block(child, depth + 1) for child in block.children]
        return PARAGRAPH_BREAK.join(parts)

    def parse(self, text: str) -> tuple[Block, ...]:
        builder = _Builder()
        lines = text.split("\n")
        paragraph: list[str] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            underline = self._UNDERLINE.fullmatch(lines[i + 1]) if i + 1 < len(lines) else None
            if underline and line.strip() and (i == 0 or not lines[i - 1].strip()):
                builder.add(Text("\n".join(paragraph)))
                paragraph = []
                builder.open(_collapse_title(line), self.MARKERS.index(underline.group(0)[0]) + 1)
                i += 2
                continue
            paragraph.append(self._ESCAPER.unescape(line))
            i += 1
        builder.add(Text("\n".join(paragraph)))
        builder.close_to(0)
        return self.normalize(builder.root)


def _clamp(blocks: tuple[Block, ...], depth: int, max_depth: int) -> tuple[Block, ...]:
    out: list[Block] = []
    for block in blocks:
        if isinstance(block, Text):
            out.append(block)
        elif depth < max_depth:
            out.append(SectionBlock(block.title, _clamp(block.children, depth + 1, max_depth)))
        else:
            out.extend(_hoist(block))
    return tuple(out)


def _hoist(section: SectionBlock) -> list[Block]:
    # Children are texts first, then sections (see _sink): the sections become siblings.
    texts = tuple(c for c in section.children if isinstance(c, Text))
    out: list[Block] = [SectionBlock(section.title, texts)]
    for child in section.children:
        if isinstance(child, SectionBlock):
            out.extend(_hoist(child))
    return out


class XMLFormat(SectionFormat):
    """XML-style tags: ``<section title="...">`` around each section's children.

    Titles round trip exactly (escaped as attribute values, newlines included). Texts are escaped
    minimally so that prompts stay readable and data rendered in XML inside them is not
    double-escaped: only ``<`` opening a ``section`` tag becomes ``&lt;`` (and ``&`` becomes
    ``&amp;`` where it would read back as that escape). Top-level blocks are separated by a
    blank line, children by a newline. Normalization: :func:`normalize` only.

    >>> print(XMLFormat().render([SectionBlock('Say "hi"', (Text("a < b & <b>c</b>"),))]))
    <section title="Say &quot;hi&quot;">
    a < b & <b>c</b>
    </section>
    """

    name = "xml"
    _TAG = re.compile(r"<section(?:\s+title\s*=\s*\"([^\"]*)\")?\s*>|</section\s*>", re.I)
    _SECTION = r"/?(?i:section)\b"
    _LT = re.compile(rf"<(?={_SECTION})")
    _AMP = re.compile(rf"&(?=(?:amp;)*lt;{_SECTION})")
    _LT_ESCAPED = re.compile(rf"&lt;(?={_SECTION})")
    _AMP_ESCAPED = re.compile(rf"&amp;(?=(?:amp;)*lt;{_SECTION})")

    def render(self, blocks: Sequence[Block]) -> str:
        return PARAGRAPH_BREAK.join(self._block(b) for b in self.normalize(blocks))

    def escape_text(self, text: str) -> str:
        return self._LT.sub("&lt;", self._AMP.sub("&amp;", text))

    def _block(self, block: Block) -> str:
        if isinstance(block, Text):
            return self.escape_text(block.text)
        head = f'<section title="{_xml.escape_attr(block.title or "")}">'
        if not block.children:
            return head + "</section>"
        return "\n".join([head, *(self._block(child) for child in block.children), "</section>"])

    def _text(self, text: str) -> Text:
        text = self._LT_ESCAPED.sub("<", text.strip())
        return Text(self._AMP_ESCAPED.sub("&", text))

    def parse(self, text: str) -> tuple[Block, ...]:
        """Read sections back; unbalanced tags are tolerated (stray ends ignored, open closed)."""
        builder = _Builder()
        pos = 0
        for tag in self._TAG.finditer(text):
            builder.add(self._text(text[pos : tag.start()]))
            pos = tag.end()
            if tag.group(0).startswith("</"):
                builder.close_to(max(builder.depth - 1, 0))
            else:
                title = None if tag.group(1) is None else _xml.unescape(tag.group(1))
                builder.open(title, builder.depth + 1)
        builder.add(self._text(text[pos:]))
        builder.close_to(0)
        return self.normalize(builder.root)


class JSONFormat(SectionFormat):
    """JSON: a list whose items are strings (texts) or ``{"title": ..., "content": [...]}``.

    Indented by two spaces, non-ASCII characters kept. Round trips every title and text exactly
    up to :func:`normalize`.

    >>> print(JSONFormat().render([SectionBlock("Task", (Text("Be brief."),))]))
    [
      {
        "title": "Task",
        "content": [
          "Be brief."
        ]
      }
    ]
    """

    name = "json"

    def render(self, blocks: Sequence[Block]) -> str:
        return dumps([self._encode(b) for b in self.normalize(blocks)], indent=2)

    def escape_text(self, text: str) -> str:
        return dumps(text)[1:-1]  # the string's JSON literal, less its quotes

    def _encode(self, block: Block) -> Any:
        if isinstance(block, Text):
            return block.text
        return {"title": block.title, "content": [self._encode(c) for c in block.children]}

    def parse(self, text: str) -> tuple[Block, ...]:
        """Read the JSON back; raises :class:`RenderError` if it is not JSON of this shape."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise RenderError(f"section text is not valid JSON: {exc}") from exc
        items = data if isinstance(data, list) else [data]
        return self.normalize([self._decode(item) for item in items])

    def _decode(self, item: Any) -> Block:
        if isinstance(item, str):
            return Text(item)
        if isinstance(item, dict) and isinstance(item.get("title"), str | None):
            content = item.get("content", [])
            if isinstance(content, list):
                return SectionBlock(item.get("title"), tuple(self._decode(c) for c in content))
        raise RenderError(
            f"expected a string or an object with 'title' and a 'content' list, got {item!r}"
        )


#: Section format name -> class: the entry points of group ``sammo_core.section_formats``
#: (the four above are sammo-core's own; a plugin package adds more).
SECTION_FORMATS: Registry[type[SectionFormat]] = Registry(
    "sammo_core.section_formats", "section format", error=RenderError
)


def get_section_format(name: str) -> SectionFormat:
    """The section format registered under ``name`` (see :data:`SECTION_FORMATS`).

    >>> get_section_format("markdown")
    MarkdownFormat()
    >>> try:
    ...     get_section_format("yaml")
    ... except UnknownFormatError as exc:
    ...     print(exc)
    unknown section format 'yaml'; use one of: json, markdown, plain, xml
    """
    if not isinstance(name, str) or name not in SECTION_FORMATS:
        raise UnknownFormatError("section format", name, SECTION_FORMATS)
    return SECTION_FORMATS[name]()
