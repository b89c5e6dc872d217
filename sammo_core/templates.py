"""Sandboxed jinja2 templates with strict undefined variables.

>>> render_template("Hello {{ name }}!", {"name": "Ada"})
'Hello Ada!'
>>> render_template("Hello {{ nme }}!", {"name": "Ada"})
Traceback (most recent call last):
...
sammo_core.errors.TemplateError: template variable 'nme' is undefined; defined: name
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sammo_core.errors import TemplateError

if TYPE_CHECKING:
    import jinja2

__all__ = ["compile_template", "render_template", "template_variables"]


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )


@functools.lru_cache(maxsize=1024)
def compile_template(text: str) -> jinja2.Template:
    """Compile ``text``; a syntax error raises TemplateError with the line."""
    import jinja2

    try:
        return _environment().from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error on line {exc.lineno}: {exc.message}") from exc


@functools.lru_cache(maxsize=1024)
def template_variables(text: str) -> frozenset[str]:
    """The undeclared variables ``text`` reads."""
    from jinja2 import meta

    return frozenset(meta.find_undeclared_variables(_environment().parse(text)))


def render_template(text: str, variables: Mapping[str, Any]) -> str:
    """Render ``text`` with ``variables``; undefined names raise TemplateError."""
    import jinja2

    template = compile_template(text)
    try:
        return template.render(**variables)
    except jinja2.UndefinedError as exc:
        missing = sorted(template_variables(text) - set(variables))
        name = missing[0] if missing else str(exc.message)
        defined = ", ".join(sorted(variables)) or "(none)"
        raise TemplateError(f"template variable {name!r} is undefined; defined: {defined}") from exc
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(f"template tried an unsafe operation: {exc}") from exc
