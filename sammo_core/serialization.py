"""Programs to JSON and back, exactly, with no pickle and no code execution on load.

``loads`` only instantiates component classes that are already imported and derive from
:class:`~sammo_core.components.Component` (plus :class:`~sammo_core.data.DataTable`); any other
``_type`` is refused before pyglove sees it, so a JSON file cannot make the loader import or
call anything.

>>> from sammo_core import Output, GenerateText, MetaPrompt, Section
>>> program = Output(GenerateText(MetaPrompt([Section("Task", ["Say hi."])])))
>>> loads(dumps(program)) == program
True
"""

from __future__ import annotations

from typing import Any

import orjson
import pyglove as pg

from sammo_core.components import Component
from sammo_core.data import DataTable
from sammo_core.errors import SerializationError

__all__ = ["dumps", "from_json", "loads", "to_json"]

_TYPE_KEY = "_type"
FORMAT_VERSION = 1


def to_json(program: Component) -> dict[str, Any]:
    """The program as a JSON-ready dict."""
    if not isinstance(program, Component):
        raise SerializationError(f"expected a program component; got {type(program).__name__}")
    return {"sammo_core_program": FORMAT_VERSION, "program": pg.to_json(program)}


def dumps(program: Component, indent: bool = True) -> str:
    """Serialize ``program`` to JSON text (stable key order)."""
    option = orjson.OPT_INDENT_2 if indent else 0
    return orjson.dumps(to_json(program), option=option).decode()


def _allowed(type_name: str) -> bool:
    cls = pg.JSONConvertible.class_from_typename(type_name)
    # Components, data tables, and pyglove's search-space choices (pg.oneof, ...), which are
    # plain data; nothing else is ever instantiated.
    return isinstance(cls, type) and (
        issubclass(cls, (Component, pg.hyper.HyperValue)) or cls is DataTable
    )


MAX_DEPTH = 200


def _check_types(root: Any, where: str) -> None:
    """Refuse unknown or missing ``_type`` names and nesting deeper than :data:`MAX_DEPTH`.

    Walks with an explicit stack, so a maliciously deep file cannot overflow Python's stack.
    """
    stack: list[tuple[Any, str, int]] = [(root, where, 0)]
    while stack:
        value, here, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SerializationError(
                f"program JSON is nested more than {MAX_DEPTH} levels deep at {here or '<root>'}; "
                "a program file this deep is not one sammo_core.dumps() wrote"
            )
        if isinstance(value, dict):
            if _TYPE_KEY in value:
                type_name = value[_TYPE_KEY]
                if not isinstance(type_name, str):
                    raise SerializationError(
                        f"'_type' at {here or '<root>'} is {orjson.dumps(type_name).decode()}; it "
                        "must name a component class, e.g. 'sammo_core.components.Output'"
                    )
                if not _allowed(type_name):
                    raise SerializationError(
                        f"refusing to load type {type_name!r} at {here or '<root>'}: only imported "
                        "sammo_core components are loaded; import the module that defines a "
                        "custom component before calling loads()"
                    )
            for key, item in value.items():
                if key != _TYPE_KEY:
                    stack.append((item, f"{here}.{key}" if here else str(key), depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{here}[{i}]", depth + 1) for i, item in enumerate(value))


def from_json(data: Any) -> Component:
    """Rebuild a program from :func:`to_json` output."""
    if not isinstance(data, dict) or "program" not in data:
        raise SerializationError(
            "not a sammo-core program file: expected an object with 'sammo_core_program' and "
            "'program' keys (write one with sammo_core.dumps(program))"
        )
    version = data.get("sammo_core_program")
    if version != FORMAT_VERSION:
        raise SerializationError(
            f"program format version {version!r} is not supported; this sammo-core reads "
            f"version {FORMAT_VERSION}"
        )
    _check_types(data["program"], "")
    try:
        program = pg.from_json(data["program"], auto_import=False)
    except Exception as exc:  # a file from a stranger: any failure is a bad file, not a bug
        raise SerializationError(
            f"program JSON does not match the components: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(program, Component):
        raise SerializationError(f"program JSON holds a {type(program).__name__}, not a component")
    return program


def loads(text: str | bytes) -> Component:
    """Parse JSON text written by :func:`dumps`."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise SerializationError(f"program file is not valid JSON: {exc}") from exc
    return from_json(data)
