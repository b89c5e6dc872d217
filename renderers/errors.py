"""The errors of the renderers package.

Hierarchy::

    RenderError (also ValueError)      a document or record that a format cannot write or read
    └── UnknownFormatError             a format name that is not registered

Parsers of model answers (``DataFormat.parse_outputs``) never raise; they return ``None`` for an
answer they cannot read.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["RenderError", "UnknownFormatError"]


class RenderError(ValueError):
    """A document or record that a format cannot render, or text that a format cannot parse.

    >>> raise RenderError("cannot render {1, 2} as JSON")
    Traceback (most recent call last):
    ...
    renderers.errors.RenderError: cannot render {1, 2} as JSON
    """


class UnknownFormatError(RenderError):
    """A format name that is not registered; the message lists the valid names.

    >>> print(UnknownFormatError("section format", "yaml", ["xml", "json", "markdown", "plain"]))
    unknown section format 'yaml'; use one of: json, markdown, plain, xml
    """

    def __init__(self, kind: str, name: str, valid: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.valid = tuple(sorted(valid))
        message = f"unknown {kind} {name!r}; use one of: {', '.join(self.valid)}"
        close = difflib.get_close_matches(str(name), self.valid, n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
        super().__init__(message)

    def __reduce__(self) -> tuple[type[UnknownFormatError], tuple[str, str, tuple[str, ...]]]:
        return (type(self), (self.kind, self.name, self.valid))
