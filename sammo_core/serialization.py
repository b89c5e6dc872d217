"""Programs to JSON and back, exactly, with no pickle and no code execution on load.

``loads`` only instantiates component classes that are already imported and derive from
:class:`~sammo_core.components.Component` (plus :class:`~sammo_core.data.DataTable`); any other
``_type`` is refused before pyglove sees it, so a JSON file cannot make the loader import or
call anything.

>>> from sammo_core import Output, GenerateText, MetaPrompt, Section
>>> program = Output(GenerateText(MetaPrompt([Section("Task", ["Say hi."])])))
>>> loads(dumps(program)) == program
True

Soft prompts (:mod:`sammo_core.soft`): :func:`dumps` writes a tensor's bytes inline (base64), so
the text stands alone; :func:`save` writes each tensor to ``<stem>.soft/<sha256>.safetensors``
beside the program file and the JSON refers to it by digest, and :func:`load` reads them back,
refusing a file whose bytes no longer match its digest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pyglove as pg

from sammo_core.components import Component
from sammo_core.data import DataTable
from sammo_core.errors import SerializationError
from sammo_core.run_files import check_not_linked, write_file
from sammo_core.soft import SoftTensor

__all__ = [
    "dumps",
    "from_json",
    "legacy_json",
    "load",
    "loads",
    "save",
    "soft_folder",
    "to_json",
]

_TYPE_KEY = "_type"
#: A soft tensor's type names: the stable one, and the module path older files hold.
_SOFT_TYPES = frozenset({SoftTensor.__serialization_key__, "sammo_core.soft.SoftTensor"})
FORMAT_VERSION = 1


def to_json(
    program: Component, soft_tensors: dict[str, SoftTensor] | None = None
) -> dict[str, Any]:
    """The program as a JSON-ready dict.

    Soft tensors are written inline, or, given a ``soft_tensors`` dict, only referenced by
    digest and put into the dict (for :func:`save` to write beside the file).
    """
    if not isinstance(program, Component):
        raise SerializationError(f"expected a program component; got {type(program).__name__}")
    extra = {} if soft_tensors is None else {"soft_tensors": soft_tensors}
    return {"sammo_core_program": FORMAT_VERSION, "program": pg.to_json(program, **extra)}


def dumps(program: Component, indent: bool = True) -> str:
    """Serialize ``program`` to JSON text (stable key order)."""
    option = orjson.OPT_INDENT_2 if indent else 0
    return orjson.dumps(to_json(program), option=option).decode()


def _allowed(type_name: str) -> bool:
    cls = pg.JSONConvertible.class_from_typename(type_name)
    # Components, data tables, and pyglove's search-space choices (pg.oneof, ...), which are
    # plain data; nothing else is ever instantiated.
    return isinstance(cls, type) and (
        issubclass(cls, (Component, pg.hyper.HyperValue)) or cls in (DataTable, SoftTensor)
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
                        "must name a component class, e.g. 'sammo_core.Output'"
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


def from_json(data: Any, soft_tensors: dict[str, SoftTensor] | None = None) -> Component:
    """Rebuild a program from :func:`to_json` output.

    ``soft_tensors`` supplies, by digest, the tensors the JSON refers to without holding them.
    """
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
        program = pg.from_json(data["program"], auto_import=False, soft_tensors=soft_tensors)
    except SerializationError:
        raise
    except Exception as exc:  # a file from a stranger: any failure is a bad file, not a bug
        raise SerializationError(
            f"program JSON does not match the components: {type(exc).__name__}: {_first_line(exc)}"
        ) from exc
    if not isinstance(program, Component):
        raise SerializationError(f"program JSON holds a {type(program).__name__}, not a component")
    return program


def _first_line(exc: Exception, width: int = 300) -> str:
    """The start of a pyglove message, which may go on to print the whole object over lines."""
    text = str(exc).strip().split("\n", 1)[0].rstrip(" :{")
    return text if len(text) <= width else text[: width - 3] + "..."


def loads(text: str | bytes, soft_dir: str | Path | None = None) -> Component:
    """Parse JSON text written by :func:`dumps` (or by :func:`save`, given its ``soft_dir``)."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise SerializationError(f"program file is not valid JSON: {exc}") from exc
    tensors = None if soft_dir is None else _read_tensors(data, Path(soft_dir))
    return from_json(data, tensors)


def soft_folder(path: str | Path) -> Path:
    """Where :func:`save` puts the soft tensors of the program file ``path``: ``<stem>.soft``.

    >>> soft_folder("runs/best_program.json").as_posix()
    'runs/best_program.soft'
    """
    path = Path(path)
    return path.with_name(f"{path.stem}.soft")


def save(program: Component, path: str | Path) -> Path:
    """Write ``program`` to ``path`` as JSON, its soft tensors beside it; return ``path``.

    Each tensor goes to ``<stem>.soft/<sha256>.safetensors`` (see :func:`soft_folder`), written
    before the JSON that refers to it, each file atomically. A program without soft prompts is
    the same file :func:`dumps` writes.

    >>> import tempfile
    >>> from sammo_core import GenerateText, MetaPrompt, Output, SoftPrompt, SoftTensor
    >>> soft = SoftPrompt(n_tokens=1, tensor=SoftTensor.from_values([[0.25, 0.5]]))
    >>> program = Output(GenerateText(MetaPrompt([soft, "Is it blue?"])))
    >>> folder = Path(tempfile.mkdtemp())
    >>> load(save(program, folder / "p.json")) == program
    True
    >>> [f.suffix for f in (folder / "p.soft").iterdir()]
    ['.safetensors']
    """
    path = Path(path)
    tensors: dict[str, SoftTensor] = {}
    text = orjson.dumps(to_json(program, tensors), option=orjson.OPT_INDENT_2)
    folder = soft_folder(path)
    for digest, tensor in tensors.items():
        name = f"{folder.name}/{digest}.safetensors"
        if not check_not_linked(path.parent, name).is_file():
            write_file(path.parent, name, tensor.to_safetensors())
    write_file(path.parent, path.name, text)
    return path


def load(path: str | Path) -> Component:
    """Read a program file written by :func:`save` (or :func:`dumps`)."""
    path = Path(path)
    return loads(path.read_bytes(), soft_dir=soft_folder(path))


def _read_tensors(data: Any, folder: Path) -> dict[str, SoftTensor]:
    """The tensors referenced (not inlined) in program JSON, read from ``folder`` by digest."""
    found: dict[str, SoftTensor] = {}
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            if value.get(_TYPE_KEY) in _SOFT_TYPES and "data" not in value:
                digest = value.get("sha256")
                if not isinstance(digest, str) or len(digest) != 64 or not digest.isalnum():
                    raise SerializationError(f"soft tensor reference {digest!r} is not a sha256")
                file = folder / f"{digest}.safetensors"
                if not file.is_file():
                    raise SerializationError(
                        f"soft tensor {digest[:8]} is missing: expected {str(file)!r} beside the "
                        "program file (copy the .soft folder along with the program)"
                    )
                # The digest is checked when the program is built (SoftTensor.from_json).
                found[digest] = SoftTensor.from_file(file)
            stack.extend(value.values())
    return found


#: Type names files held before the stable names, where the class is not (any longer) at
#: ``module.Class`` of its stable name's class.
_LEGACY_NAMES = {"sammo_core.SoftTensor": "sammo_core.soft.SoftTensor"}


def legacy_json(program: Component) -> dict[str, Any]:
    """:func:`to_json` with the type names of the release before the stable names (each class
    by its module path): what identifies a program where a digest was taken of it then (a
    search's checkpoint fingerprint), so runs started before still resume.

    >>> from sammo_core import Output, GenerateText, MetaPrompt
    >>> legacy_json(Output(GenerateText(MetaPrompt([]))))["program"]["_type"]
    'sammo_core.components.Output'
    """

    def rename(value: Any) -> Any:
        if isinstance(value, dict):
            out = {k: rename(v) for k, v in value.items()}
            name = out.get(_TYPE_KEY)
            if isinstance(name, str) and name.count(".") == 1 and name.startswith("sammo_core."):
                cls = pg.JSONConvertible.class_from_typename(name)
                legacy = _LEGACY_NAMES.get(name)
                if legacy is None and isinstance(cls, type):
                    legacy = f"{cls.__module__}.{cls.__qualname__}"
                out[_TYPE_KEY] = legacy or name
            return out
        if isinstance(value, list):
            return [rename(v) for v in value]
        return value

    renamed: dict[str, Any] = rename(to_json(program))
    return renamed
