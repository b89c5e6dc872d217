"""Prompt files to programs: parse the prompt you already have into a component tree.

Three readers, one model of a prompt (sections holding paragraphs, with placeholders for the
input), so a search can start from, and be compared with, the prompt you use today:

* :func:`parse_markdown` -- ATX headings (``#``, ``##``, ...) become nested :class:`Section`
  nodes; paragraphs (split by blank lines) become string children kept verbatim: a list, an
  ``Input:``/``Output:`` example block or a fenced code block (blank lines included) stays one
  string, so it renders back as written.
* :func:`parse_xml` -- block elements (``<instructions>`` at a line start ... ``</instructions>``
  at a line end) become sections titled by the tag name, in the ``xml`` section format.
* :func:`parse_template` -- a jinja2 template laid out like either of the above; each paragraph
  that uses jinja becomes a :class:`Template`.

Placeholders: ``{{ input }}`` is the current input. Any other name, ``{{ question }}``, reads
the field ``question`` of a dict input; when a file uses a single such name, a non-dict input
is used whole. ``inputs`` and ``constants`` keep their :class:`Template` meaning. A paragraph
holding a placeholder becomes a :class:`Template` whose literal text is escaped (see
:func:`escape_jinja`), so the prompt is the file with the placeholder replaced by the input.
With ``input_node="data"``, a paragraph that is only ``{{ input }}`` becomes :class:`InputData`
instead, which data-format operators can change; it renders as the data format writes an input
(plain: ``Input: <text>`` and the ``Output:`` cue), so the prompt is no longer the file's.

Round trip, "up to whitespace" meaning equal after :func:`normalize_whitespace`: rendering the
parsed program for input ``x`` gives the file with each placeholder replaced by ``x`` (in
``data`` mode, a paragraph ``{{ input }}`` by the data format's rendering of ``x``; for a
template, jinja2's rendering of the file), with these normalizations, which the section formats
force:

* markdown: heading levels follow nesting (``##`` under no ``#`` comes back as ``#``); a heading
  with no text is dropped (its paragraphs stay); a line that reads as a heading (``# comment``)
  but is no heading, being inside a fenced block, inside a jinja block spanning paragraphs, or
  part of the input, comes back with a leading backslash, the markdown escape.
* xml: each block element's tags are written as the ``xml`` section format writes them,
  ``<tag>`` as ``<section title="tag">`` and ``</tag>`` as ``</section>``, each on its own line;
  elements with attributes (other than ``<section title="...">``), inline elements and
  unclosed tags stay text; a ``<section`` tag left in text comes back as ``&lt;section``.

>>> meta = parse_markdown("# Task\\n\\nAnswer yes or no.\\n\\n# Input\\n\\n{{ input }}")
>>> print(render_prompt(meta, "Is water wet?"))
# Task
<BLANKLINE>
Answer yes or no.
<BLANKLINE>
# Input
<BLANKLINE>
Is water wet?
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import dataclasses
import re
from collections.abc import Coroutine, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeAlias, TypeVar

from sammo_core.components import (
    Component,
    GenerateText,
    InputData,
    MetaPrompt,
    Output,
    Section,
    Template,
)
from sammo_core.data import DataTable
from sammo_core.errors import ConfigError, TemplateError
from sammo_core.graph import compile
from sammo_core.jinja_text import escape_jinja
from sammo_core.runners.base import LLMRequest
from sammo_core.runners.scripted import ScriptedRunner
from sammo_core.templates import compile_template, render_template, template_variables

__all__ = [
    "PROMPT_FILE_FORMATS",
    "PROMPT_FILE_SUFFIXES",
    "InputNode",
    "escape_jinja",
    "normalize_whitespace",
    "parse_markdown",
    "parse_prompt_file",
    "parse_template",
    "parse_xml",
    "render_prompt",
    "render_request",
]

InputNode: TypeAlias = Literal["data", "template"]
Structure: TypeAlias = Literal["markdown", "xml"]
Child: TypeAlias = Component | str
T = TypeVar("T")

#: The readers :func:`parse_prompt_file` picks from.
PROMPT_FILE_FORMATS = ("markdown", "poml", "template", "xml")
#: File name suffixes and the reader each one selects.
PROMPT_FILE_SUFFIXES: Mapping[str, str] = MappingProxyType(
    {
        ".md": "markdown",
        ".markdown": "markdown",
        ".txt": "markdown",
        ".xml": "xml",
        ".j2": "template",
        ".jinja": "template",
        ".jinja2": "template",
        ".poml": "poml",
    }
)

#: Sections nested deeper than this are refused: no prompt is written so, and a deeper tree
#: would overflow the stack of the recursive steps that copy, compile and render programs.
MAX_SECTION_DEPTH = 64

_RESERVED = frozenset({"input", "inputs", "constants"})
# A jinja keyword or literal ("{{ and }}") is no variable, so no placeholder.
_KEYWORDS = r"(?:and|or|not|in|is|if|else|true|false|none|True|False|None)\b"
_PLACEHOLDER = re.compile(rf"\{{\{{\s*(?!{_KEYWORDS})([A-Za-z_][A-Za-z0-9_]*)\s*\}}\}}")
_LONE_INPUT = re.compile(r"\{\{\s*input\s*\}\}")
_JINJA_OPEN = re.compile(r"\{(?=[{%#])")
# Read headings exactly as the markdown section format does, so text lines it would escape are
# the ones read as headings, and lines it did escape lose one backslash.
_HEADING = re.compile(r"(#+)(?: (.*))?")
_ESCAPED_HEADING = re.compile(r"\\+#+(?: .*)?\Z")
_FENCE = re.compile(r"[ \t]{0,3}(`{3,}|~{3,})")
_LEFT_TRIM = re.compile(r"\A\s*\{[{%#]-")
_RIGHT_TRIM = re.compile(r"-[}%#]\}\s*\Z")
_LOADING = re.compile(r"\{%[-+]?\s*(extends|include|import|from)\b")
_SCOPED = re.compile(r"\{%[-+]?\s*(set|macro|block|call)\b")
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


# -- public helpers ------------------------------------------------------------------------


def normalize_whitespace(text: str) -> str:
    """The text "up to whitespace": its non-blank lines, trimmed, inner runs of spaces as one.

    Line breaks inside paragraphs count; blank lines, indentation and trailing spaces do not.

    >>> normalize_whitespace("# Task \\n\\n\\n  Be   brief.\\nBe kind.\\n")
    '# Task\\nBe brief.\\nBe kind.'
    """
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


def render_request(
    program: Output, input: Any = None, *, constants: Mapping[str, Any] | None = None
) -> LLMRequest:
    """The request ``program`` sends for one ``input``, rendered by the real compile/run path.

    The program runs on a one-row table with a :class:`ScriptedRunner`; raises
    :class:`ConfigError` when it makes more than one call (a nested :class:`GenerateText`,
    whose prompt depends on model answers). Works inside a running event loop too.

    >>> program = Output(GenerateText(MetaPrompt([Template("Hi {{ input }}.")]), "Be kind."))
    >>> [m.content for m in render_request(program, "Ada").messages]
    ['Be kind.', 'Hi Ada.']
    """
    if not isinstance(program, Output):
        raise ConfigError(
            f"render_request() needs an Output program; got {type(program).__name__} "
            "(wrap it: Output(GenerateText(prompt)))"
        )
    runner = ScriptedRunner(default="", soft_prompts=True)
    graph = compile(program)
    _run(graph.run(DataTable([input], constants=constants), runner))
    if runner.calls != 1:
        raise ConfigError(
            f"the program makes {runner.calls} LLM calls per input (a nested GenerateText); "
            "its prompt depends on model answers and cannot be rendered alone"
        )
    return runner.requests[0]


def render_prompt(
    meta: Component, input: Any = None, *, constants: Mapping[str, Any] | None = None
) -> str:
    """The user message ``meta`` (a :class:`MetaPrompt`) renders to for ``input``.

    ``input=None`` is for static prompts; a prompt that reads the input raises
    :class:`ConfigError` then.

    >>> print(render_prompt(parse_markdown("# Task\\nBe brief.")))
    # Task
    <BLANKLINE>
    Be brief.
    """
    program = Output(GenerateText(meta), parser="raw")
    if input is None and not compile(program).is_static("child.prompt"):
        raise ConfigError("this prompt reads the input: pass input=... to render_prompt()")
    return render_request(program, input, constants=constants).messages[-1].content


# -- markdown and templates ------------------------------------------------------------------


def parse_markdown(text: str, *, input_node: InputNode = "template") -> MetaPrompt:
    """Read a markdown prompt: headings to nested sections, paragraphs to strings.

    Only ``{{ name }}`` placeholders are read; any other brace stays literal text. A heading
    that holds a placeholder raises :class:`ConfigError` (titles are static).

    >>> text = "Intro.\\n\\n# Task\\n\\n- a\\n- b\\n\\n## Input\\n\\nText: {{ input }}"
    >>> print(parse_markdown(text))
    MetaPrompt()
    ├── 'Intro.'
    └── Section 'Task'
        ├── '- a - b'
        └── Section 'Input'
            └── Template('Text: {{ input }}')
    >>> print(parse_markdown("{{ input }}", input_node="data"))
    MetaPrompt()
    └── InputData()
    """
    root = _read_headed(text, jinja=False)
    return MetaPrompt(_convert(root, _Options.of(root, False, input_node)), "markdown")


def parse_template(
    text: str, *, structure: Structure = "markdown", input_node: InputNode = "template"
) -> MetaPrompt:
    """Read a jinja2 template laid out as markdown (default) or XML (``structure="xml"``).

    Paragraphs that use jinja become :class:`Template` nodes; a ``{% if %}``/``{% for %}``
    block spanning paragraphs stays one node. Variables other than ``input``, ``inputs`` and
    ``constants`` read fields of a dict input (or, when the template uses a single such name, a
    non-dict input whole) through a ``{% set name = ... %}`` prefix. A template that defines
    names (``set``, ``macro``, ``block``, ``call``) becomes one :class:`Template`, in the
    ``xml`` section format, which escapes the least. Templates loading other files raise
    :class:`ConfigError`.

    >>> meta = parse_template("# Task\\n\\n{% if question %}Answer {{ question }}.{% endif %}")
    >>> print(meta)
    MetaPrompt()
    └── Section 'Task'
        └── Template('{% set question = input["question"] if input ...')
    >>> print(render_prompt(meta, {"question": "2+2"}))
    # Task
    <BLANKLINE>
    Answer 2+2.
    """
    text = _newlines(text)
    compile_template(text)  # a syntax error names its line in the whole file
    loading = _LOADING.search(text)
    if loading:
        raise ConfigError(
            f"template uses {{% {loading.group(1)} %}}, which loads another file; inline that "
            "file's text first"
        )
    if _SCOPED.search(text):
        root = _Raw(None, [text])
        return MetaPrompt(_convert(root, _Options.of(root, True, input_node)), "xml")
    if structure == "xml":
        root = _Raw(None, _read_tagged(text, jinja=True))
        return MetaPrompt(_convert(root, _Options.of(root, True, input_node)), "xml")
    if structure != "markdown":
        raise ConfigError(f"unknown template structure {structure!r}; use 'markdown' or 'xml'")
    root = _read_headed(text, jinja=True)
    return MetaPrompt(_convert(root, _Options.of(root, True, input_node)), "markdown")


@dataclasses.dataclass
class _Raw:
    """A section as read, before its paragraphs become components (``title=None``: root)."""

    title: str | None
    children: list[_Raw | str]

    def paragraphs(self) -> list[str]:
        out: list[str] = []
        for child in self.children:
            out.extend(child.paragraphs() if isinstance(child, _Raw) else [child])
        return out


@dataclasses.dataclass(frozen=True)
class _Heading:
    level: int
    title: str


def _newlines(text: str) -> str:
    return text.replace("\r\n", "\n")


def _read_headed(text: str, *, jinja: bool) -> _Raw:
    root = _Raw(None, [])
    stack: list[tuple[int, _Raw]] = [(0, root)]
    for item in _paragraphs(_newlines(text), headings=True, jinja=jinja):
        if isinstance(item, str):
            stack[-1][1].children.append(item)
            continue
        title = _static_title(item.title, jinja)
        while stack[-1][0] >= item.level:
            stack.pop()
        if len(stack) > MAX_SECTION_DEPTH:
            raise _too_deep(f"heading {title!r}")
        section = _Raw(title, [])
        stack[-1][1].children.append(section)
        stack.append((item.level, section))
    return root


def _static_title(title: str, jinja: bool) -> str:
    """A heading's title; static jinja in a template's heading (``{{ '{' }}``) is rendered."""
    if jinja and _JINJA_OPEN.search(title) and not template_variables(title):
        return " ".join(render_template(title, {}).split())
    if (_JINJA_OPEN if jinja else _PLACEHOLDER).search(title):
        raise ConfigError(
            f"heading {title!r} holds a placeholder, but section titles are static text: move "
            "the placeholder into a paragraph under the heading"
        )
    return title


def _paragraphs(text: str, *, headings: bool, jinja: bool) -> list[str | _Heading]:
    """Split ``text`` at blank lines (and headings), keeping fenced and jinja blocks whole."""
    items: list[str | _Heading] = []
    lines: list[str] = []
    scan = _JinjaScan()
    fence: str | None = None

    def add(line: str) -> None:
        lines.append(line)
        scan.feed(line + "\n")

    def flush() -> None:
        nonlocal scan
        body = "\n".join(lines).strip("\n")
        lines.clear()
        scan = _JinjaScan()
        if not body.strip():
            return
        if jinja and items and isinstance(items[-1], str) and _LEFT_TRIM.match(body):
            items[-1] = items[-1] + "\n\n" + body  # "{{-" eats the blank line before it
        else:
            items.append(body)

    for line in text.split("\n"):
        if fence is not None:
            add(_unescape_heading(line) if headings else line)
            if re.fullmatch(rf"[ \t]{{0,3}}{fence[0]}{{{len(fence)},}}\s*", line):
                fence = None
            continue
        heading = _HEADING.fullmatch(line) if headings else None
        if (heading or not line.strip()) and not (jinja and not _complete(lines, scan)):
            flush()
            if heading:
                items.append(_Heading(len(heading.group(1)), " ".join((heading[2] or "").split())))
            continue
        opener = _FENCE.match(line)
        if opener:
            fence = opener.group(1)
        add(_unescape_heading(line) if headings else line)
    flush()
    return items


def _unescape_heading(line: str) -> str:
    return line[1:] if _ESCAPED_HEADING.match(line) else line


def _complete(lines: list[str], scan: _JinjaScan | None = None) -> bool:
    """Whether ``lines`` close every jinja block they open (and trim nothing after them).

    ``scan``, fed the same text, rules out most incomplete texts without compiling them, so a
    block or a string left open over thousands of lines costs linear time, not a compile per
    line.
    """
    if scan is not None and not scan.complete():
        return False
    text = "\n".join(lines)
    if not _JINJA_OPEN.search(text):
        return True
    if _RIGHT_TRIM.search(text):
        return False
    try:
        compile_template(text)
    except TemplateError:
        if scan is not None:
            scan.compile_failed()
        return False
    return True


_TAG_OPEN = re.compile(r"\{([{%#])")
_TAG_CLOSE = {"{": "}}", "%": "%}", "#": "#}"}
_STATEMENT = re.compile(r"[-+]?\s*(\w*)")
_END_RAW = re.compile(r"\{%[-+]?\s*endraw\s*[-+]?%\}")
_BLOCK_STATEMENTS = frozenset(
    {"autoescape", "block", "call", "filter", "for", "if", "macro", "with"}
)


class _JinjaScan:
    """Whether jinja text fed to it so far might be complete: no tag left open, no block
    opened and not ended, and some ``}`` fed since a compile last failed (text without one
    closes nothing). A cheap necessary condition (one pass, no parsing) checked before the
    compile that decides."""

    def __init__(self) -> None:
        self.depth = 0
        self.open: str | None = None  # the kind of the tag being read: "{", "%" or "#"
        self.statement = ""  # the text of the statement tag being read
        self.raw = False
        self.braces = 0  # "}" characters fed
        self.failed_at = -1  # ``braces`` when a compile last failed

    def feed(self, text: str) -> None:
        self.braces += text.count("}")
        pos = 0
        while True:
            if self.raw:
                end_raw = _END_RAW.search(text, pos)
                if end_raw is None:
                    return
                self.raw, pos = False, end_raw.end()
            elif self.open is not None:
                end = text.find(_TAG_CLOSE[self.open], pos)
                if end == -1:
                    self.statement += text[pos:] if self.open == "%" else ""
                    return
                if self.open == "%":
                    self._statement(self.statement + text[pos:end])
                self.open, self.statement, pos = None, "", end + 2
            else:
                tag = _TAG_OPEN.search(text, pos)
                if tag is None:
                    return
                self.open, pos = tag[1], tag.end()

    def _statement(self, body: str) -> None:
        word = _STATEMENT.match(body)[1]  # type: ignore[index]
        if word in _BLOCK_STATEMENTS or (word == "set" and "=" not in body):
            self.depth += 1
        elif word == "raw":
            self.raw = True
        elif word.startswith("end"):
            self.depth -= 1

    def complete(self) -> bool:
        return (
            self.open is None and not self.raw and self.depth <= 0 and self.failed_at != self.braces
        )

    def compile_failed(self) -> None:
        self.failed_at = self.braces


# -- xml -------------------------------------------------------------------------------------


def parse_xml(text: str, *, input_node: InputNode = "template") -> MetaPrompt:
    """Read an XML-tagged prompt: block elements become sections titled by tag name.

    A block element starts at a line start and ends at a line end (whitespace aside), has no
    attributes (except ``<section title="...">``, read as the xml section format writes it)
    and is closed. Its content is read the same way; text between elements becomes paragraphs.
    Placeholders as in :func:`parse_markdown`.

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
    root = _Raw(None, _read_tagged(_newlines(text), jinja=False))
    return MetaPrompt(_convert(root, _Options.of(root, False, input_node)), "xml")


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


def _too_deep(where: str) -> ConfigError:
    return ConfigError(
        f"prompt file nests sections more than {MAX_SECTION_DEPTH} deep (at {where}); "
        "flatten its headings or tags"
    )


def _read_tagged(
    text: str,
    *,
    jinja: bool,
    elements: _Elements | None = None,
    lo: int = 0,
    hi: int | None = None,
    depth: int = 0,
) -> list[_Raw | str]:
    """The sections and paragraphs of ``text[lo:hi]`` (all of ``text`` by default)."""
    if elements is None:
        elements = _Elements.of(text)
        deepest = elements.deepest(text)
        if deepest is not None:
            raise _too_deep(f"tag <{deepest.name}>")
    hi = len(text) if hi is None else hi
    children: list[_Raw | str] = []
    pending = lo
    scan, scanned = _JinjaScan(), lo  # the text from ``pending`` up to ``scanned``
    for element in elements.top(lo, hi):
        title = _title(element)
        if title is None or not _own_lines(text, element, lo, hi):
            continue
        inner = text[element.open_end : element.close_start]
        before = text[pending : element.open_start]
        if jinja:
            scan.feed(text[scanned : element.open_start])
            scanned = element.open_start
            if not (_complete([before], scan) and _complete([inner])):
                continue  # inside a jinja block: the element is template text
            scan, scanned = _JinjaScan(), element.close_end
        children.extend(_text_paragraphs(before, jinja))
        if depth >= MAX_SECTION_DEPTH:
            raise _too_deep(f"tag <{element.name}>")
        content = _read_tagged(
            text,
            jinja=jinja,
            elements=elements,
            lo=element.open_end,
            hi=element.close_start,
            depth=depth + 1,
        )
        children.append(_Raw(title, content))
        pending = element.close_end
    children.extend(_text_paragraphs(text[pending:hi], jinja))
    return children


def _text_paragraphs(text: str, jinja: bool) -> list[_Raw | str]:
    text = _AMP_ESCAPED.sub("&", _LT_ESCAPED.sub("<", text))
    return [p for p in _paragraphs(text, headings=False, jinja=jinja) if isinstance(p, str)]


# -- paragraphs to components ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Options:
    jinja: bool
    input_node: InputNode
    single_field: bool

    @classmethod
    def of(cls, root: _Raw, jinja: bool, input_node: InputNode) -> _Options:
        if input_node not in ("data", "template"):
            raise ConfigError(f"unknown input_node {input_node!r}; use 'data' or 'template'")
        fields: set[str] = set()
        for paragraph in root.paragraphs():
            if jinja:
                fields |= template_variables(paragraph)
            else:
                fields.update(m.group(1) for m in _PLACEHOLDER.finditer(paragraph))
        return cls(jinja, input_node, len(fields - _RESERVED) == 1)

    def field(self, name: str) -> str:
        """The jinja expression for placeholder ``name`` (see the module docstring)."""
        if name in _RESERVED:
            return name
        if self.single_field:
            return f'input["{name}"] if input is mapping else input'
        return f'input["{name}"]'


def _convert(raw: _Raw, options: _Options) -> list[Child]:
    return [
        Section(child.title, _convert(child, options))
        if isinstance(child, _Raw)
        else _paragraph(child, options)
        for child in raw.children
    ]


def _paragraph(text: str, options: _Options) -> Child:
    if options.input_node == "data" and _LONE_INPUT.fullmatch(text.strip()):
        return InputData()
    if options.jinja:
        if not _JINJA_OPEN.search(text):
            return text
        names = sorted(template_variables(text) - _RESERVED)
        prefix = "".join(f"{{% set {name} = {options.field(name)} %}}" for name in names)
        return Template(prefix + text)
    if not _PLACEHOLDER.search(text):
        return text
    parts: list[str] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(text):
        literal = escape_jinja(text[pos : match.start()], final=False)
        parts += [literal, f"{{{{ {options.field(match[1])} }}}}"]
        pos = match.end()
    parts.append(escape_jinja(text[pos:]))
    return Template("".join(parts))


# -- files -----------------------------------------------------------------------------------


def parse_prompt_file(
    path: str | Path,
    format: str | None = None,
    *,
    input_node: InputNode = "template",
    append_input: bool = False,
) -> Output:
    """Read a prompt file into a program ``Output(GenerateText(meta), parser="raw")``.

    ``format`` (``markdown``, ``xml`` or ``template``) defaults to the suffix (see
    :data:`PROMPT_FILE_SUFFIXES`; ``.txt`` reads as markdown, since plain paragraphs are
    markdown). A template named ``*.xml.j2`` is laid out as XML. There is no content sniffing:
    an unknown suffix raises :class:`ConfigError`; pass ``format=``. The parser is ``raw`` (the
    model's whole answer), as a prompt file says nothing about answer formats.

    A file that never uses the input (no ``{{ input }}``, no ``{{ field }}``) would send the
    same text for every row: that raises :class:`ConfigError` saying where the input goes,
    unless ``append_input=True`` (``--append-input``), which adds it as a last section
    ``Input``.
    """
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    if format is None:
        suffix = suffixes[-1] if suffixes else ""
        if suffix not in PROMPT_FILE_SUFFIXES:
            known = ", ".join(sorted(PROMPT_FILE_SUFFIXES))
            raise ConfigError(
                f"cannot tell the format of {str(path)!r} from its suffix {suffix!r} (known: "
                f"{known}); pass format= one of: {', '.join(PROMPT_FILE_FORMATS)}"
            )
        format = PROMPT_FILE_SUFFIXES[suffix]
    text = _read_prompt_text(path)
    if format == "markdown":
        meta = parse_markdown(text, input_node=input_node)
    elif format == "xml":
        meta = parse_xml(text, input_node=input_node)
    elif format == "poml":
        from sammo_core.poml_files import parse_poml

        meta = parse_poml(text, where=str(path))
    elif format == "template":
        inner = suffixes[-2] if len(suffixes) >= 2 else ""
        structure: Structure = "xml" if inner == ".xml" else "markdown"
        meta = parse_template(text, structure=structure, input_node=input_node)
    else:
        raise ConfigError(
            f"unknown prompt file format {format!r}; use one of: {', '.join(PROMPT_FILE_FORMATS)}"
        )
    program = Output(GenerateText(meta), parser="raw")
    if not compile(program).is_static("child.prompt"):
        return program
    if append_input:
        children = [*meta.children, Section("Input", [Template("{{ input }}")])]
        return Output(GenerateText(meta.clone(override={"children": children})), parser="raw")
    raise ConfigError(_no_input_message(path, text, format))


def _read_prompt_text(path: Path) -> str:
    """The file's text (UTF-8, a byte order mark dropped); other bytes raise ConfigError."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"prompt file {str(path)!r} is not UTF-8 text: byte {exc.start} (line {line}) is "
            f"{data[exc.start : exc.start + 1]!r} ({exc.reason}); save the file as UTF-8"
        ) from None


_SINGLE_BRACED = re.compile(r"(?<!\{)\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}(?!\})")


def _no_input_message(path: Path, text: str, format: str) -> str:
    """Why a prompt file is refused: it never uses the input; say where the input goes."""
    found = _SINGLE_BRACED.search(text)
    seen = (
        f"it has {found[0]!r}, which is literal text: write {{{{ {found[1]} }}}} (double braces)"
        if found
        else "it has no {{ input }} placeholder"
    )
    example = "<input>{{ input }}</input>" if format == "xml" else "# Input\n\n{{ input }}"
    return (
        f"prompt file {str(path)!r} never uses the input, so every row would get the same "
        f"prompt: {seen}. Put {{{{ input }}}} where the input goes (e.g. a last section "
        f"{example!r}), or pass --append-input to add the input as its own section"
    )


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
