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


def _check_types(value: Any, where: str) -> None:
    if isinstance(value, dict):
        type_name = value.get(_TYPE_KEY)
        if type_name is not None and not (isinstance(type_name, str) and _allowed(type_name)):
            raise SerializationError(
                f"refusing to load type {type_name!r} at {where or '<root>'}: only imported "
                "sammo_core components are loaded; import the module that defines a custom "
                "component before calling loads()"
            )
        for key, item in value.items():
            if key != _TYPE_KEY:
                _check_types(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_types(item, f"{where}[{i}]")


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
    except (TypeError, ValueError, KeyError) as exc:
        raise SerializationError(f"program JSON does not match the components: {exc}") from exc
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
