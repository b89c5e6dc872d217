"""A prompt file as its readers see it: sections holding paragraphs, made into components.

The readers of :mod:`sammo_core.prompt_files` (markdown, XML, templates) share this model: a
tree of :class:`RawSection` whose leaves are paragraphs, cut from the text by
:func:`split_paragraphs` (at blank lines and headings, keeping fenced blocks and jinja blocks
whole), and made into a :class:`MetaPrompt` by :func:`to_meta_prompt`: a section becomes a
:class:`Section`, a paragraph a string, or a :class:`Template` when it holds a placeholder (see
:mod:`sammo_core.prompt_files` for what placeholders read).

>>> text = "# Task\\n\\nBe\\nbrief.\\n\\n```\\na\\n\\nb\\n```"
>>> split_paragraphs(text, headings=True, jinja=False)
[_Heading(level=1, title='Task'), 'Be\\nbrief.', '```\\na\\n\\nb\\n```']
>>> root = RawSection(None, ["Be brief.", RawSection("Input", ["{{ input }}"])])
>>> print(to_meta_prompt(root, "markdown", jinja=False, input_node="template"))
MetaPrompt()
├── 'Be brief.'
└── Section 'Input'
    └── Template('{{ input }}')
"""

from __future__ import annotations

import dataclasses
import re
from typing import Literal, TypeAlias

from sammo_core.components import Component, InputData, MetaPrompt, Section, Template
from sammo_core.errors import ConfigError
from sammo_core.jinja_blocks import JINJA_OPEN, JinjaScan, jinja_complete
from sammo_core.jinja_text import escape_jinja
from sammo_core.templates import template_variables

__all__ = [
    "MAX_SECTION_DEPTH",
    "PLACEHOLDER",
    "InputNode",
    "RawSection",
    "normalize_newlines",
    "split_paragraphs",
    "to_meta_prompt",
    "too_deep_error",
]

InputNode: TypeAlias = Literal["data", "template"]
Child: TypeAlias = Component | str

#: Sections nested deeper than this are refused: no prompt is written so, and a deeper tree
#: would overflow the stack of the recursive steps that copy, compile and render programs.
MAX_SECTION_DEPTH = 64

_RESERVED = frozenset({"input", "inputs", "constants"})
# A jinja keyword or literal ("{{ and }}") is no variable, so no placeholder.
_KEYWORDS = r"(?:and|or|not|in|is|if|else|true|false|none|True|False|None)\b"
PLACEHOLDER = re.compile(rf"\{{\{{\s*(?!{_KEYWORDS})([A-Za-z_][A-Za-z0-9_]*)\s*\}}\}}")
_LONE_INPUT = re.compile(r"\{\{\s*input\s*\}\}")
# Read headings exactly as the markdown section format does, so text lines it would escape are
# the ones read as headings, and lines it did escape lose one backslash.
_HEADING = re.compile(r"(#+)(?: (.*))?")
_ESCAPED_HEADING = re.compile(r"\\+#+(?: .*)?\Z")
_FENCE = re.compile(r"[ \t]{0,3}(`{3,}|~{3,})")
_LEFT_TRIM = re.compile(r"\A\s*\{[{%#]-")


@dataclasses.dataclass
class RawSection:
    """A section as read, before its paragraphs become components (``title=None``: root)."""

    title: str | None
    children: list[RawSection | str]

    def paragraphs(self) -> list[str]:
        out: list[str] = []
        for child in self.children:
            out.extend(child.paragraphs() if isinstance(child, RawSection) else [child])
        return out


@dataclasses.dataclass(frozen=True)
class _Heading:
    level: int
    title: str


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n")


def too_deep_error(where: str) -> ConfigError:
    return ConfigError(
        f"prompt file nests sections more than {MAX_SECTION_DEPTH} deep (at {where}); "
        "flatten its headings or tags"
    )


def split_paragraphs(text: str, *, headings: bool, jinja: bool) -> list[str | _Heading]:
    """Split ``text`` at blank lines (and headings), keeping fenced and jinja blocks whole."""
    items: list[str | _Heading] = []
    lines: list[str] = []
    scan = JinjaScan()
    fence: str | None = None

    def add(line: str) -> None:
        lines.append(line)
        scan.feed(line + "\n")

    def flush() -> None:
        nonlocal scan
        body = "\n".join(lines).strip("\n")
        lines.clear()
        scan = JinjaScan()
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
        if (heading or not line.strip()) and not (jinja and not jinja_complete(lines, scan)):
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


def to_meta_prompt(
    root: RawSection, section_format: str, *, jinja: bool, input_node: InputNode
) -> MetaPrompt:
    """``root``'s sections and paragraphs as a :class:`MetaPrompt` in ``section_format``.

    ``jinja``: the paragraphs are jinja (a template's), not text with ``{{ name }}``
    placeholders.
    """
    return MetaPrompt(_convert(root, _Options.of(root, jinja, input_node)), section_format)


@dataclasses.dataclass(frozen=True)
class _Options:
    jinja: bool
    input_node: InputNode
    single_field: bool

    @classmethod
    def of(cls, root: RawSection, jinja: bool, input_node: InputNode) -> _Options:
        if input_node not in ("data", "template"):
            raise ConfigError(f"unknown input_node {input_node!r}; use 'data' or 'template'")
        fields: set[str] = set()
        for paragraph in root.paragraphs():
            if jinja:
                fields |= template_variables(paragraph)
            else:
                fields.update(m.group(1) for m in PLACEHOLDER.finditer(paragraph))
        return cls(jinja, input_node, len(fields - _RESERVED) == 1)

    def field(self, name: str) -> str:
        """The jinja expression for placeholder ``name`` (see :mod:`sammo_core.prompt_files`)."""
        if name in _RESERVED:
            return name
        if self.single_field:
            return f'input["{name}"] if input is mapping else input'
        return f'input["{name}"]'


def _convert(raw: RawSection, options: _Options) -> list[Child]:
    return [
        Section(child.title, _convert(child, options))
        if isinstance(child, RawSection)
        else _paragraph(child, options)
        for child in raw.children
    ]


def _paragraph(text: str, options: _Options) -> Child:
    if options.input_node == "data" and _LONE_INPUT.fullmatch(text.strip()):
        return InputData()
    if options.jinja:
        if not JINJA_OPEN.search(text):
            return text
        names = sorted(template_variables(text) - _RESERVED)
        prefix = "".join(f"{{% set {name} = {options.field(name)} %}}" for name in names)
        return Template(prefix + text)
    if not PLACEHOLDER.search(text):
        return text
    parts: list[str] = []
    pos = 0
    for match in PLACEHOLDER.finditer(text):
        literal = escape_jinja(text[pos : match.start()], final=False)
        parts += [literal, f"{{{{ {options.field(match[1])} }}}}"]
        pos = match.end()
    parts.append(escape_jinja(text[pos:]))
    return Template("".join(parts))
