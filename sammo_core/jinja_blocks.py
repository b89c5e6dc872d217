"""Whether a piece of jinja text is complete: it closes every tag and block it opens.

The prompt-file readers (:mod:`sammo_core.prompt_files`) cut a template at blank lines, headings
and tags only where the text before the cut is complete, so a ``{% if %}`` ... ``{% endif %}``
block spanning paragraphs stays one piece. :func:`jinja_complete` decides, by compiling;
:class:`JinjaScan`, fed the same text, rules out most incomplete texts in one pass first.

>>> jinja_complete(["{% if short %}", "Be brief."])
False
>>> jinja_complete(["{% if short %}", "Be brief.", "{% endif %}"])
True
>>> scan = JinjaScan()
>>> scan.feed("{% for x in xs %}{{ x }}")
>>> scan.complete()
False
"""

from __future__ import annotations

import re

from sammo_core.errors import TemplateError
from sammo_core.templates import compile_template

__all__ = ["JINJA_OPEN", "JinjaScan", "jinja_complete"]

#: A ``{`` opening a jinja tag (``{{``, ``{%`` or ``{#``).
JINJA_OPEN = re.compile(r"\{(?=[{%#])")
_RIGHT_TRIM = re.compile(r"-[}%#]\}\s*\Z")


def jinja_complete(lines: list[str], scan: JinjaScan | None = None) -> bool:
    """Whether ``lines`` close every jinja block they open (and trim nothing after them).

    ``scan``, fed the same text, rules out most incomplete texts without compiling them, so a
    block or a string left open over thousands of lines costs linear time, not a compile per
    line.
    """
    if scan is not None and not scan.complete():
        return False
    text = "\n".join(lines)
    if not JINJA_OPEN.search(text):
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


class JinjaScan:
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
