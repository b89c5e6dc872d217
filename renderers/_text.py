"""Helpers shared by the formats: line escaping, ids, JSON leaves, code fences, answer matching."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from renderers.errors import RenderError

#: A line that opens or closes a markdown code fence.
FENCE = re.compile(r"[ \t]*(?:```|~~~)[^\n`]*")
_INT_ID = re.compile(r"0|-?[1-9][0-9]{0,17}")


class LineEscaper:
    """Marks text lines that a parser would read as structure, by prefixing one backslash.

    ``pattern`` describes the start of a structural line and must not match a leading backslash.
    A line matching ``\\\\*pattern`` (any number of backslashes, then the pattern) gets one more
    backslash; the parser removes one from lines matching ``\\\\+pattern``. The mapping is a
    bijection, so every text round trips, and text that looks like nothing stays untouched.

    >>> esc = LineEscaper(r"#")
    >>> esc.escape("# not a heading"), esc.unescape("\\\\# not a heading")
    ('\\\\# not a heading', '# not a heading')
    """

    def __init__(self, pattern: str) -> None:
        self._escapable = re.compile(rf"\\*(?:{pattern})")
        self._escaped = re.compile(rf"\\+(?:{pattern})")

    def escape(self, line: str) -> str:
        return "\\" + line if self._escapable.match(line) else line

    def unescape(self, line: str) -> str:
        return line[1:] if self._escaped.match(line) else line

    def escape_lines(self, text: str) -> str:
        escapable = self._escapable.match
        return "\n".join([f"\\{line}" if escapable(line) else line for line in text.split("\n")])


def id_key(value: object) -> str | None:
    """The key under which an id is matched: ``3``, ``"3"``, ``" 3 "`` and ``3.0`` are equal."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, str):
        return value.strip()
    return None


def parse_id(text: str) -> int | str:
    """Read an id written as text: canonical integers become ``int``, anything else stays."""
    return int(text) if _INT_ID.fullmatch(text) else text


def normalize_id(value: int | str) -> int | str:
    """The id as a text format reads it back (``"3"`` -> ``3``; ``"03"`` stays a string)."""
    return parse_id(value) if isinstance(value, str) else value


def dumps(value: Any, *, indent: int | None = None) -> str:
    """Deterministic JSON text (key order kept, non-ASCII kept), or :class:`RenderError`."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, indent=indent)
    except (TypeError, ValueError, RecursionError) as exc:
        raise RenderError(f"cannot render {value!r} as JSON: {exc}") from exc


def leaf_text(value: Any) -> str:
    """A leaf value as text: strings as they are, anything else as JSON text."""
    return value if isinstance(value, str) else dumps(value)


def strip_fences(text: str) -> str:
    """The inside of a text that is one fenced code block, else the stripped text."""
    text = text.strip()
    lines = text.split("\n")
    if len(lines) >= 2 and FENCE.fullmatch(lines[0]) and FENCE.fullmatch(lines[-1]):
        return "\n".join(lines[1:-1]).strip()
    return text


class Answers:
    """Collects parsed answers by id (see :meth:`DataFormat.parse_outputs`)."""

    def __init__(self, ids: Sequence[int | str]) -> None:
        self.result: dict[int | str, Any | None] = dict.fromkeys(ids)
        self._by_key: dict[str, list[int | str]] = {}
        for id_ in self.result:
            key = id_key(id_)
            if key is not None:
                self._by_key.setdefault(key, []).append(id_)
        self._found: set[int | str] = set()
        self._loose: list[tuple[bool, Any]] = []

    def add(self, answer_id: object, value: Any) -> None:
        key = id_key(answer_id)
        targets = self._by_key.get(key, []) if key is not None else []
        for target in targets:
            if target not in self._found:
                self._found.add(target)
                self.result[target] = value
        if not targets:
            self._loose.append((key is not None, value))

    def finish(self) -> dict[int | str, Any | None]:
        if len(self.result) == 1 and not self._found and self._loose:
            without_id = [value for has_id, value in self._loose if not has_id]
            (only,) = self.result
            self.result[only] = without_id[0] if without_id else self._loose[0][1]
        return self.result


_DECODER = json.JSONDecoder()


def _json_values(text: str) -> Iterator[Any]:
    """Every JSON object embedded in ``text`` (chatter, fences and broken JSON skipped)."""
    pos = text.find("{")
    while pos != -1:
        try:
            value, end = _DECODER.raw_decode(text, pos)
        except (ValueError, RecursionError):
            pos = text.find("{", pos + 1)
            continue
        yield value
        pos = text.find("{", end)


def _output_objects(value: Any) -> Iterator[dict[str, Any]]:
    """Objects with an ``"output"`` key, searching inside containers that have none."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            if "output" in item:
                yield item
            else:
                todo.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            todo.extend(reversed(item))


def json_output_objects(text: str) -> Iterator[dict[str, Any]]:
    """Objects with an ``"output"`` key in ``text``, wherever they are nested; never raises."""
    for value in _json_values(text):
        yield from _output_objects(value)
