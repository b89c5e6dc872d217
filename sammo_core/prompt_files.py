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

(:func:`parse_xml` lives in :mod:`sammo_core.prompt_xml`, and the model the readers share in
:mod:`sammo_core.prompt_paragraphs`; all three are imported from here.)

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
import concurrent.futures
import re
from collections.abc import Coroutine, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeAlias, TypeVar

from sammo_core.components import Component, GenerateText, MetaPrompt, Output, Section, Template
from sammo_core.data import DataTable
from sammo_core.errors import ConfigError
from sammo_core.graph import compile
from sammo_core.jinja_blocks import JINJA_OPEN
from sammo_core.jinja_text import escape_jinja
from sammo_core.prompt_paragraphs import (
    MAX_SECTION_DEPTH,
    InputNode,
    RawSection,
    normalize_newlines,
    split_paragraphs,
    to_meta_prompt,
    too_deep_error,
)
from sammo_core.prompt_paragraphs import PLACEHOLDER as _PLACEHOLDER
from sammo_core.prompt_xml import parse_xml, read_tagged
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

Structure: TypeAlias = Literal["markdown", "xml"]
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

_LOADING = re.compile(r"\{%[-+]?\s*(extends|include|import|from)\b")
_SCOPED = re.compile(r"\{%[-+]?\s*(set|macro|block|call)\b")


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
    return to_meta_prompt(root, "markdown", jinja=False, input_node=input_node)


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
    text = normalize_newlines(text)
    compile_template(text)  # a syntax error names its line in the whole file
    loading = _LOADING.search(text)
    if loading:
        raise ConfigError(
            f"template uses {{% {loading.group(1)} %}}, which loads another file; inline that "
            "file's text first"
        )
    if _SCOPED.search(text):
        root = RawSection(None, [text])
        return to_meta_prompt(root, "xml", jinja=True, input_node=input_node)
    if structure == "xml":
        root = RawSection(None, read_tagged(text, jinja=True))
        return to_meta_prompt(root, "xml", jinja=True, input_node=input_node)
    if structure != "markdown":
        raise ConfigError(f"unknown template structure {structure!r}; use 'markdown' or 'xml'")
    root = _read_headed(text, jinja=True)
    return to_meta_prompt(root, "markdown", jinja=True, input_node=input_node)


def _read_headed(text: str, *, jinja: bool) -> RawSection:
    root = RawSection(None, [])
    stack: list[tuple[int, RawSection]] = [(0, root)]
    for item in split_paragraphs(normalize_newlines(text), headings=True, jinja=jinja):
        if isinstance(item, str):
            stack[-1][1].children.append(item)
            continue
        title = _static_title(item.title, jinja)
        while stack[-1][0] >= item.level:
            stack.pop()
        if len(stack) > MAX_SECTION_DEPTH:
            raise too_deep_error(f"heading {title!r}")
        section = RawSection(title, [])
        stack[-1][1].children.append(section)
        stack.append((item.level, section))
    return root


def _static_title(title: str, jinja: bool) -> str:
    """A heading's title; static jinja in a template's heading (``{{ '{' }}``) is rendered."""
    if jinja and JINJA_OPEN.search(title) and not template_variables(title):
        return " ".join(render_template(title, {}).split())
    if (JINJA_OPEN if jinja else _PLACEHOLDER).search(title):
        raise ConfigError(
            f"heading {title!r} holds a placeholder, but section titles are static text: move "
            "the placeholder into a paragraph under the heading"
        )
    return title


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
