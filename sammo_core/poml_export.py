"""Programs out as POML, and the ``poml`` package's rendering that POML files are checked
against (see :mod:`sammo_core.poml_files` for reading them, and its whitespace rule).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sammo_core.components import MetaPrompt, Output
from sammo_core.errors import ConfigError

__all__ = ["poml_messages", "program_to_poml"]

_EXPRESSION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)

_ESCAPES = {"&": '{{ "\\x26" }}', "<": '{{ "\\x3c" }}', "'": '{{ "\\x27" }}'}


def _poml_text(template: str, quote: bool = False) -> str:
    """A jinja template (as :func:`program_template` writes it) as POML text: its expressions
    are JavaScript too; ``&`` and ``<``, which POML's reader refuses even as entities, become
    expressions (and ``'`` in a single-quoted attribute)."""
    special = re.compile("[&<']" if quote else "[&<]")
    out: list[str] = []
    pos = 0
    for match in _EXPRESSION.finditer(template):
        literal = template[pos : match.start()]
        out.append(special.sub(lambda m: _ESCAPES[m.group(0)], literal))
        out.append(match.group(0).replace("&", "\\x26").replace("<", "\\x3c"))
        pos = match.end()
    out.append(special.sub(lambda m: _ESCAPES[m.group(0)], template[pos:]))
    return "".join(out)


def program_to_poml(program: Output, templates: Sequence[tuple[str, str]]) -> str:
    """The program as a POML file, from its ``templates`` (``(role, jinja template)`` pairs,
    as :func:`sammo_core.export.program_template` writes them; ``sammo-core export --format
    poml`` and :func:`sammo_core.export.export_program` pass them): rendered by the ``poml``
    package with the context ``{"input": X}`` it gives the prompt the program sends for ``X``
    (up to :func:`sammo_core.poml_files.normalize_poml`). Sections become
    ``<cp caption="...">`` and paragraphs ``<p whiteSpace="pre">``; the input is
    ``{{ input }}`` (``{{ input.field }}`` with input fields). Programs with a system message
    raise :class:`ConfigError`.

    >>> from sammo_core import GenerateText, MetaPrompt, Section, Template
    >>> from sammo_core.export import program_template
    >>> program = Output(GenerateText(MetaPrompt([Section("Task", ["Say a & b."]),
    ...     Template("Q: {{ input }}")])))
    >>> print(program_to_poml(program, program_template(program)))
    <poml>
    <cp caption='Task'>
    <p whiteSpace="pre">Say a {{ "\\x26" }} b.
    <BLANKLINE>
    Q: {{ input }}</p>
    </cp>
    </poml>

    (Text after a section is read as part of it, as markdown shows it: the prompt is the same.)
    """
    from renderers.document import SectionBlock, Text
    from renderers.sections import MarkdownFormat

    if len(templates) > 1:
        raise ConfigError(
            "the program has a system message, which the POML export does not write (POML "
            "sends all its text in one message here); export format 'messages' or 'json' "
            "keeps it"
        )
    text = templates[0][1]
    markdown = MarkdownFormat()
    meta = getattr(program.child, "prompt", None)
    is_markdown = isinstance(meta, MetaPrompt) and meta.section_format == "markdown"
    blocks = markdown.parse(text) if is_markdown else (Text(text),)

    def write(block: Any) -> list[str]:
        if isinstance(block, SectionBlock):
            inner = [line for child in block.children for line in write(child)]
            if block.title is None:
                return inner
            return [f"<cp caption='{_poml_text(block.title, quote=True)}'>", *inner, "</cp>"]
        assert isinstance(block, Text)
        body = markdown.escape_text(block.text) if is_markdown else block.text
        return [f'<p whiteSpace="pre">{_poml_text(body)}</p>']

    lines = [line for block in blocks for line in write(block)]
    return "\n".join(["<poml>", *lines, "</poml>"])


def poml_messages(
    source: str, context: Mapping[str, Any] | None = None, *, chat: bool = True
) -> list[tuple[str, str]]:
    """The ``poml`` package's rendering of POML ``source`` (a path or markup), as
    ``(speaker, content)`` pairs: the reference a ``.poml`` import is checked against. Needs
    the ``poml`` extra (``pip install 'sammo-core[poml]'``, which brings its own Node.js)."""
    try:
        import poml
    except ImportError:
        raise ConfigError(
            "rendering POML needs the poml package: pip install 'sammo-core[poml]'"
        ) from None
    result = poml.poml(source, context=dict(context or {}), chat=chat, format="dict")
    messages = result["messages"]
    if isinstance(messages, str):
        return [("human", messages)]
    return [(str(m["speaker"]), str(m["content"])) for m in messages]
