"""Text as a jinja2 template that renders to it exactly: :func:`escape_jinja`, shared by the
prompt-file readers and the exports.
"""

from __future__ import annotations

import re

__all__ = ["escape_jinja"]

_JINJA_SPECIAL = re.compile(r"\{(?=[{%#\r])|\r")
_JINJA_SPECIAL_OPEN_END = re.compile(r"\{(?=[{%#\r]|\Z)|\r")


def escape_jinja(text: str, *, final: bool = True) -> str:
    """A jinja2 template that renders to ``text`` exactly (under jinja2's default settings).

    Each ``{`` that would open a jinja tag is written as ``{{ '{' }}`` and a carriage return
    (which jinja would turn into a newline) as ``{{ '\\r' }}``. When ``text`` ends the template
    (``final``), a final newline, which jinja drops by default, is kept by an empty expression;
    otherwise a final ``{`` is escaped too, as a placeholder may follow it.

    >>> escape_jinja("Use {{ name }} and {% raw %}")
    "Use {{ '{' }}{ name }} and {{ '{' }}% raw %}"
    >>> import jinja2
    >>> jinja2.Template(escape_jinja("a {{ b }}\\n")).render()
    'a {{ b }}\\n'
    """
    special = _JINJA_SPECIAL if final else _JINJA_SPECIAL_OPEN_END
    text = special.sub(lambda m: "{{ '\\r' }}" if m.group(0) == "\r" else "{{ '{' }}", text)
    return text + "{{ '' }}" if final and text.endswith("\n") else text
