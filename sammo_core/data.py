"""Data tables: immutable rows of examples, loaded from files and split with explicit seeds.

A :class:`DataTable` holds ``inputs`` (JSON-like values: a string, or a dict of named fields),
``outputs`` (the gold answers; ``None`` where unknown) and ``constants`` (values shared by every
row, such as a task description). Rows are plain Python values, so tables of thousands of rows
stay fast; they are shared between tables, never copied, so do not mutate them.

>>> table = DataTable(["2+2", "3+3", "4+4"], ["4", "6", "8"])
>>> table
DataTable(3 rows: '2+2' -> '4', '3+3' -> '6', '4+4' -> '8')
>>> train, test = table.split(2, seed=0)
>>> len(train), len(test)
(2, 1)
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import random
import types
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import orjson
import pyglove as pg

from sammo_core.errors import ConfigError, DataError, SerializationError

__all__ = ["DataTable", "Row"]

_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv"}
_JSON_LIST_KEYS = ("examples", "data")
_REPR_ROWS = 3
_REPR_WIDTH = 40
# A dict key pyglove would read as a class name when it loads JSON; payloads holding one are
# stored as a JSON string instead, so user data can never name a class to import.
_PG_TYPE_KEY = b'"_type"'


@dataclass(frozen=True, slots=True)
class Row:
    """One example of a :class:`DataTable`: its position, input and gold output.

    >>> DataTable(["hi"], ["hello"])[0]
    Row(index=0, input='hi', output='hello')
    """

    index: int
    input: Any
    output: Any


class DataTable(pg.JSONConvertible):  # type: ignore[misc]
    """An immutable table of examples with inputs, gold outputs and shared constants.

    Equality and ``hash`` compare content (as canonical JSON, so dict key order does not
    matter). Tables serialize with ``pg.to_json``/``pg.from_json``, also inside ``pg.Object``
    fields.

    >>> table = DataTable([{"q": "2+2"}], ["4"], constants={"task": "Add."})
    >>> table[0].input, table.constants["task"]
    ({'q': '2+2'}, 'Add.')
    >>> DataTable(["a", "b"], ["x"])
    Traceback (most recent call last):
    ...
    sammo_core.errors.DataError: inputs and outputs differ in length: 2 inputs, 1 outputs
    """

    #: The stable name saved files give it (see :func:`sammo_core.components.stable_type_name`).
    __serialization_key__ = "sammo_core.DataTable"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A subclass is saved under its own module path, never under the stable name above
        # (pyglove would register it there, in place of this class).
        cls.__serialization_key__ = f"{cls.__module__}.{cls.__qualname__}"
        super().__init_subclass__(**kwargs)

    __slots__ = ("_canonical", "_constants", "_hash", "_inputs", "_outputs")

    _inputs: tuple[Any, ...]
    _outputs: tuple[Any, ...]
    _constants: Mapping[str, Any]
    _canonical: bytes | None
    _hash: int | None

    def __init__(
        self,
        inputs: Iterable[Any],
        outputs: Iterable[Any] | None = None,
        constants: Mapping[str, Any] | None = None,
    ) -> None:
        inputs = tuple(inputs)
        outputs = (None,) * len(inputs) if outputs is None else tuple(outputs)
        if len(inputs) != len(outputs):
            raise DataError(
                f"inputs and outputs differ in length: {len(inputs)} inputs, {len(outputs)} outputs"
            )
        constants = dict(constants or {})
        for key in constants:
            if not isinstance(key, str):
                raise DataError(f"constant names must be strings; got {key!r}")
        self._set(inputs, outputs, constants, None)
        self._canonical_bytes()  # validates that every value is JSON-like

    def _set(
        self,
        inputs: tuple[Any, ...],
        outputs: tuple[Any, ...],
        constants: dict[str, Any] | Mapping[str, Any],
        canonical: bytes | None,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "_inputs", inputs)
        set_(self, "_outputs", outputs)
        if not isinstance(constants, types.MappingProxyType):
            constants = types.MappingProxyType(dict(constants))
        set_(self, "_constants", constants)
        set_(self, "_canonical", canonical)
        set_(self, "_hash", None)

    @classmethod
    def _trusted(
        cls, inputs: tuple[Any, ...], outputs: tuple[Any, ...], constants: Mapping[str, Any]
    ) -> DataTable:
        # Rows taken from a validated table need no second validation pass.
        table = object.__new__(cls)
        table._set(inputs, outputs, constants, None)
        return table

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"DataTable is immutable; cannot set {name!r}")

    def __copy__(self) -> DataTable:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> DataTable:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._inputs, self._outputs, dict(self._constants)))

    # -- columns and rows ------------------------------------------------------------------

    @property
    def inputs(self) -> tuple[Any, ...]:
        """The inputs, one per row.

        >>> DataTable(["a", "b"]).inputs
        ('a', 'b')
        """
        return self._inputs

    @property
    def outputs(self) -> tuple[Any, ...]:
        """The gold outputs, one per row; ``None`` where unknown.

        >>> DataTable(["a", "b"]).outputs
        (None, None)
        """
        return self._outputs

    @property
    def constants(self) -> Mapping[str, Any]:
        """Read-only values shared by every row.

        >>> DataTable(["a"], constants={"task": "Classify."}).constants["task"]
        'Classify.'
        """
        return self._constants

    def __len__(self) -> int:
        return len(self._inputs)

    def __iter__(self) -> Iterator[Row]:
        for i, (inp, out) in enumerate(zip(self._inputs, self._outputs, strict=True)):
            yield Row(i, inp, out)

    @overload
    def __getitem__(self, key: int) -> Row: ...

    @overload
    def __getitem__(self, key: slice) -> DataTable: ...

    def __getitem__(self, key: int | slice) -> Row | DataTable:
        """A row by position (negative counts from the end), or a table for a slice.

        >>> t = DataTable(["a", "b", "c"])
        >>> t[-1].input, t[1:].inputs
        ('c', ('b', 'c'))
        """
        if isinstance(key, slice):
            return self._trusted(self._inputs[key], self._outputs[key], self._constants)
        index = range(len(self._inputs))[key]  # raises IndexError when out of range
        return Row(index, self._inputs[index], self._outputs[index])

    def select(self, indices: Iterable[int]) -> DataTable:
        """A table of the rows at ``indices``, in that order (repeats allowed).

        >>> DataTable(["a", "b", "c"]).select([2, 0]).inputs
        ('c', 'a')
        """
        n = len(self._inputs)
        chosen = list(indices)
        for i in chosen:
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
                raise DataError(f"select: index {i!r} is out of range for a table of {n} rows")
        return self._trusted(
            tuple(self._inputs[i] for i in chosen),
            tuple(self._outputs[i] for i in chosen),
            self._constants,
        )

    # -- content identity --------------------------------------------------------------------

    def _canonical_bytes(self) -> bytes:
        if self._canonical is None:
            try:
                canonical = _dump_canonical(self._inputs, self._outputs, self._constants)
            except TypeError:
                raise _not_json_error(self._inputs, self._outputs, self._constants) from None
            object.__setattr__(self, "_canonical", canonical)
            return canonical
        return self._canonical

    def content_hash(self) -> str:
        """SHA-256 (hex) of the canonical JSON of inputs, outputs and constants.

        Stable across processes and Python versions; dict key order does not matter.

        >>> a, b = DataTable([{"x": 1, "y": 2}]), DataTable([{"y": 2, "x": 1}])
        >>> a.content_hash() == b.content_hash(), len(a.content_hash())
        (True, 64)
        """
        return hashlib.sha256(self._canonical_bytes()).hexdigest()

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, DataTable):
            return NotImplemented
        return len(self) == len(other) and self._canonical_bytes() == other._canonical_bytes()

    def __hash__(self) -> int:
        if self._hash is None:
            object.__setattr__(self, "_hash", hash(self._canonical_bytes()))
        assert self._hash is not None
        return self._hash

    def __repr__(self) -> str:
        n = len(self._inputs)
        text = f"{n} row" if n == 1 else f"{n} rows"
        shown = [
            f"{_short(inp)} -> {_short(out)}"
            for inp, out in zip(self._inputs[:_REPR_ROWS], self._outputs[:_REPR_ROWS], strict=True)
        ]
        if n > _REPR_ROWS:
            shown.append(f"... {n - _REPR_ROWS} more")
        if shown:
            text += ": " + ", ".join(shown)
        if self._constants:
            text += "; constants: " + ", ".join(self._constants)
        return f"DataTable({text})"

    # -- building from records and files -----------------------------------------------------

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        input_field: str = "input",
        output_field: str | None = "output",
        input_fields: Sequence[str] | None = None,
        *,
        constants: Mapping[str, Any] | None = None,
    ) -> DataTable:
        """Build a table from dicts, taking the input and output from named fields.

        ``input_fields=[...]`` makes each input a dict of those fields (``input_field`` is then
        unused). ``output_field`` is required in every record; pass ``None`` for data without
        outputs.

        >>> DataTable.from_records([{"text": "hi", "label": "greeting"}], "text", "label")
        DataTable(1 row: 'hi' -> 'greeting')
        >>> DataTable.from_records([{"q": "x", "ctx": "y"}], input_fields=["q", "ctx"],
        ...                        output_field=None)[0].input
        {'q': 'x', 'ctx': 'y'}
        >>> DataTable.from_records([{"text": "hi"}], "text")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        sammo_core.errors.DataError: record 0: missing field 'output'; fields present: text (...)
        """
        located = ((f"record {i}", rec) for i, rec in enumerate(records))
        return cls._from_located(located, input_field, output_field, input_fields, constants)

    @classmethod
    def _from_located(
        cls,
        located: Iterable[tuple[str, Any]],
        input_field: str,
        output_field: str | None,
        input_fields: Sequence[str] | None,
        constants: Mapping[str, Any] | None,
    ) -> DataTable:
        fields = None if input_fields is None else tuple(input_fields)
        inputs: list[Any] = []
        outputs: list[Any] = []
        for where, record in located:
            inp, out = _extract(record, where, input_field, output_field, fields)
            inputs.append(inp)
            outputs.append(out)
        return cls(inputs, outputs, constants)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        input_field: str = "input",
        output_field: str | None = "output",
        input_fields: Sequence[str] | None = None,
        *,
        format: str | None = None,
        constants: Mapping[str, Any] | None = None,
    ) -> DataTable:
        """Load a ``.jsonl``, ``.json`` or ``.csv`` file (``format`` overrides the suffix).

        JSONL: one object a line, blank lines skipped. JSON: a list of objects, or an object
        with that list under ``"examples"`` or ``"data"``. CSV: a header row, then one row per
        example (values are strings). Fields are picked as in :meth:`from_records`. Errors
        name the file, the line (JSON: the element index) and the field.

        >>> DataTable.load("missing.jsonl")
        Traceback (most recent call last):
        ...
        sammo_core.errors.DataError: data file not found: missing.jsonl
        """
        where = str(path)
        fmt = format if format is not None else _FORMATS.get(Path(path).suffix.lower())
        if fmt not in ("jsonl", "json", "csv"):
            raise ConfigError(
                f"cannot tell the format of {where!r}; "
                "pass format='jsonl', 'json' or 'csv', or use one of the suffixes "
                ".jsonl, .json, .csv"
            )
        # CSV keeps line breaks as given: a "\r\n" inside a quoted field stays "\r\n".
        text = _read_text(path, newline="" if fmt == "csv" else None)
        if fmt == "jsonl":
            located = _jsonl_records(text, where)
        elif fmt == "json":
            located = _json_records(text, where)
        else:
            located = _csv_records(text, where, input_field, output_field, input_fields)
        return cls._from_located(located, input_field, output_field, input_fields, constants)

    def to_records(self) -> list[dict[str, Any]]:
        """One ``{"input": ..., "output": ...}`` dict per row.

        >>> DataTable(["a"], ["b"]).to_records()
        [{'input': 'a', 'output': 'b'}]
        """
        return [
            {"input": inp, "output": out}
            for inp, out in zip(self._inputs, self._outputs, strict=True)
        ]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the rows as JSONL (``{"input", "output"}`` per line); constants are not saved.

        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "rows.jsonl"
        >>> DataTable(["a"], ["b"]).save(path)
        >>> DataTable.load(path) == DataTable(["a"], ["b"])
        True
        """
        lines = [orjson.dumps(record) + b"\n" for record in self.to_records()]
        Path(path).write_bytes(b"".join(lines))

    # -- pyglove JSON ------------------------------------------------------------------------

    def to_json(self, **kwargs: Any) -> dict[str, Any]:
        """A plain-JSON dict with a ``_type`` key, as ``pg.to_json`` expects.

        Inputs and outputs stay readable lists; data that itself holds a ``"_type"`` key is
        stored under ``"json"`` as a string, so loading it can never import a class.

        >>> table = DataTable(["a"], ["b"])
        >>> DataTable.from_json(table.to_json()) == table
        True
        """
        payload = orjson.dumps(
            {"inputs": self._inputs, "outputs": self._outputs, "constants": dict(self._constants)}
        )
        json_dict: dict[str, Any] = self.to_json_dict({}, **kwargs)
        if _PG_TYPE_KEY in payload:
            json_dict["json"] = payload.decode("utf-8")
        else:
            json_dict.update(orjson.loads(payload))
        return json_dict

    @classmethod
    def from_json(cls, json_value: Any, **kwargs: Any) -> DataTable:
        """Rebuild a table from :meth:`to_json`'s dict.

        >>> DataTable.from_json({"inputs": ["a"], "outputs": [None], "constants": {}})
        DataTable(1 row: 'a' -> None)
        """
        if not isinstance(json_value, Mapping):
            raise SerializationError(
                f"DataTable JSON must be an object; got {type(json_value).__name__}"
            )
        body = {k: v for k, v in json_value.items() if k != pg.JSONConvertible.TYPE_NAME_KEY}
        if "json" in body:
            extra = sorted(set(body) - {"json"})
            body = orjson.loads(body["json"])
        else:
            extra = sorted(set(body) - {"inputs", "outputs", "constants"})
        if extra or "inputs" not in body:
            raise SerializationError(
                "DataTable JSON needs 'inputs' (and optionally 'outputs', 'constants'); "
                f"unexpected keys: {', '.join(extra) or '(none)'}"
            )
        return cls(body["inputs"], body.get("outputs"), body.get("constants"))

    # -- seeded operations -------------------------------------------------------------------

    def shuffle(self, seed: int) -> DataTable:
        """The rows in a random order fixed by ``seed``.

        >>> table = DataTable(["a", "b", "c", "d"])
        >>> table.shuffle(seed=1) == table.shuffle(seed=1), sorted(table.shuffle(seed=1).inputs)
        (True, ['a', 'b', 'c', 'd'])
        """
        order = list(range(len(self)))
        random.Random(_check_seed(seed)).shuffle(order)
        return self.select(order)

    def sample(self, n: int, seed: int) -> DataTable:
        """``n`` distinct rows drawn without replacement, in the drawn order, fixed by ``seed``.

        >>> len(DataTable(["a", "b", "c"]).sample(2, seed=0))
        2
        >>> DataTable(["a"]).sample(2, seed=0)
        Traceback (most recent call last):
        ...
        sammo_core.errors.DataError: cannot sample 2 rows from a table of 1 rows
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"sample size must be a non-negative int; got {n!r}")
        if n > len(self):
            raise DataError(f"cannot sample {n} rows from a table of {len(self)} rows")
        rng = random.Random(_check_seed(seed))
        return self.select(rng.sample(range(len(self)), n))

    def split(self, *sizes: int | float | None, seed: int | None = None) -> tuple[DataTable, ...]:
        """Split into consecutive parts, after shuffling with ``seed`` (``None``: keep order).

        ``sizes`` are all ints (row counts) or all floats (fractions of ``len(self)``; part k
        ends at ``n * (f_1 + ... + f_k)`` rounded half up, so parts never overlap or overrun).
        Each size gives one part. If the sizes leave rows over (counts summing to less than
        ``len(self)``, or fractions summing to less than 1.0) one more part with the remaining
        rows is appended. A last size of ``None`` always means "the rest" (possibly empty), so
        the number of parts is fixed. Counts asking for more rows than the table has raise
        :class:`DataError`. With a seed, ``split(..., seed=s)`` equals
        ``shuffle(s).split(...)``, rows keeping their shuffled order.

        >>> t = DataTable([str(i) for i in range(10)])
        >>> [len(p) for p in t.split(0.8)], [len(p) for p in t.split(0.5, 0.5)]
        ([8, 2], [5, 5])
        >>> [len(p) for p in t.split(3, 3)], [len(p) for p in t.split(4, 6, None)]
        ([3, 3, 4], [4, 6, 0])
        >>> t.split(2, 1)[1].inputs
        ('2',)
        """
        n = len(self)
        rest = bool(sizes) and sizes[-1] is None
        given = sizes[:-1] if rest else sizes
        if not sizes:
            raise ConfigError("split needs at least one size, e.g. split(0.8) or split(100, 50)")
        if any(s is None for s in given):
            raise ConfigError("only the last split size may be None (meaning the rest)")
        bounds, covered = _split_bounds([s for s in given if s is not None], n)
        order = list(range(n))
        if seed is not None:
            random.Random(_check_seed(seed)).shuffle(order)
        starts = [0, *bounds]
        parts = [self.select(order[a:b]) for a, b in zip(starts, bounds, strict=False)]
        if rest or not covered:
            parts.append(self.select(order[starts[-1] :]))
        return tuple(parts)

    # -- outputs -----------------------------------------------------------------------------

    def with_outputs(self, outputs: Iterable[Any]) -> DataTable:
        """The same inputs and constants with new outputs.

        >>> DataTable(["a"]).with_outputs(["b"])
        DataTable(1 row: 'a' -> 'b')
        """
        return DataTable(self._inputs, outputs, self._constants)

    def unique_outputs(self) -> tuple[Any, ...]:
        """The distinct known outputs (``None`` left out), sorted: strings, numbers, others.

        >>> DataTable(["a", "b", "c", "d"], ["no", "yes", None, "no"]).unique_outputs()
        ('no', 'yes')
        """
        seen: dict[bytes, Any] = {}
        for out in self._outputs:
            if out is not None:
                seen.setdefault(orjson.dumps(out, option=orjson.OPT_SORT_KEYS), out)
        return tuple(v for _, v in sorted(seen.items(), key=_output_order))


# -- helpers -------------------------------------------------------------------------------------


def _dump_canonical(
    inputs: tuple[Any, ...], outputs: tuple[Any, ...], constants: Mapping[str, Any]
) -> bytes:
    body = {"constants": dict(constants), "inputs": inputs, "outputs": outputs}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def _not_json_error(
    inputs: tuple[Any, ...], outputs: tuple[Any, ...], constants: Mapping[str, Any]
) -> DataError:
    named = [
        *((f"input of row {i}", v) for i, v in enumerate(inputs)),
        *((f"output of row {i}", v) for i, v in enumerate(outputs)),
        *((f"constant {k!r}", v) for k, v in constants.items()),
    ]
    for what, value in named:
        try:
            orjson.dumps(value)
        except TypeError as e:
            return DataError(
                f"the {what} is not JSON-like ({e}): {_short(value)}; "
                "use strings, numbers, booleans, None, lists and dicts with string keys"
            )
    return DataError("table values are not JSON-like")  # pragma: no cover


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_WIDTH else text[: _REPR_WIDTH - 3] + "..."


def _output_order(item: tuple[bytes, Any]) -> tuple[int, Any]:
    dumped, value = item
    if isinstance(value, str):
        return (0, value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (1, value)
    return (2, dumped)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an int; got {seed!r}")
    return seed


def _split_bounds(sizes: list[int | float], n: int) -> tuple[list[int], bool]:
    """End positions of the parts named by ``sizes``, and whether they cover every row."""
    if not sizes:
        return [], False
    if all(isinstance(s, int) and not isinstance(s, bool) for s in sizes):
        if any(s < 0 for s in sizes):
            raise ConfigError(f"split counts must be >= 0; got {list(sizes)}")
        bounds = [int(b) for b in itertools.accumulate(sizes)]
        if bounds[-1] > n:
            raise DataError(f"split sizes ask for {bounds[-1]} rows but the table has {n} rows")
        return bounds, bounds[-1] == n
    if all(isinstance(s, float) for s in sizes):
        if any(not 0.0 <= s <= 1.0 for s in sizes):
            raise ConfigError(f"split fractions must lie in [0, 1]; got {list(sizes)}")
        total = math.fsum(sizes)
        if total > 1.0 + 1e-9:
            raise ConfigError(f"split fractions sum to {total:g}, more than 1.0")
        bounds = [
            min(n, math.floor(n * math.fsum(sizes[: k + 1]) + 0.5)) for k in range(len(sizes))
        ]
        covered = abs(total - 1.0) <= 1e-9  # decided by the fractions alone, not by rounding
        if covered:
            bounds[-1] = n
        return bounds, covered
    raise ConfigError(
        f"split sizes must be all ints (row counts) or all floats (fractions); got {list(sizes)}"
    )


def _extract(
    record: Any,
    where: str,
    input_field: str,
    output_field: str | None,
    input_fields: tuple[str, ...] | None,
) -> tuple[Any, Any]:
    if not isinstance(record, Mapping):
        raise DataError(f"{where}: expected an object with named fields, got {_kind(record)}")
    wanted = [*(input_fields if input_fields is not None else (input_field,))]
    for field in wanted:
        if field not in record:
            raise DataError(
                f"{where}: missing field {field!r}; fields present: {_present(record)} "
                "(choose fields with input_field=... or input_fields=[...])"
            )
    if output_field is not None and output_field not in record:
        raise DataError(
            f"{where}: missing field {output_field!r}; fields present: {_present(record)} "
            "(pass output_field=None for data without outputs)"
        )
    if input_fields is not None:
        inp: Any = {f: record[f] for f in input_fields}
    else:
        inp = record[input_field]
    return inp, None if output_field is None else record[output_field]


def _present(record: Mapping[str, Any] | Sequence[str]) -> str:
    """Field names for a message, on one line: a name holding a line break or other control
    character is quoted with its escapes."""
    names = [str(k) for k in record]
    return ", ".join(n if n.isprintable() else repr(n) for n in names) or "(none)"


def _kind(value: Any) -> str:
    names: dict[type, str] = {
        list: "a list",
        str: "a string",
        type(None): "null",
        bool: "a boolean",
    }
    for typ, name in names.items():
        if isinstance(value, typ):
            return name
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


def _read_text(path: str | os.PathLike[str], newline: str | None = None) -> str:
    try:
        with open(path, encoding="utf-8-sig", newline=newline) as f:
            return f.read()
    except FileNotFoundError:
        raise DataError(f"data file not found: {path}") from None
    except IsADirectoryError:
        raise DataError(f"data path is a directory, not a file: {path}") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def _json_error(e: Any) -> str:
    return f"invalid JSON ({e.msg}: line {e.lineno} column {e.colno})"


#: Integers longer than this are refused when read: a table holds 64-bit integers at most.
_MAX_INT_DIGITS = 40


class _BadNumber(ValueError):
    """A number that JSON data may not hold (raised from inside ``json.loads``)."""


def _no_constant(name: str) -> Any:
    raise _BadNumber(f'{name} is not a JSON number; write null or a string such as "{name}"')


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadNumber(f"the number {_short(text)} is too large for a float")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise _BadNumber(f"an integer of {len(text.lstrip('-')):,} digits is too large")
    return int(text)


def _parse_json(text: str, where: str) -> Any:
    """``text`` as strict JSON: NaN, infinities and huge integers refused, deep nesting too."""
    import json

    try:
        return json.loads(
            text, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_bounded_int
        )
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: {_json_error(e)}") from None
    except _BadNumber as e:
        raise DataError(f"{where}: {e}") from None
    except RecursionError:
        raise DataError(
            f"{where}: JSON nested too deeply to read; data values must be flatter"
        ) from None


def _jsonl_records(text: str, where: str) -> Iterator[tuple[str, Any]]:
    # Split on "\n" only: str.splitlines would also break at U+2028 inside JSON strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        here = f"{where} line {number}"
        yield here, _parse_json(line, here)


def _json_records(text: str, where: str) -> Iterator[tuple[str, Any]]:
    document = _parse_json(text, where)
    if isinstance(document, Mapping):
        for key in _JSON_LIST_KEYS:
            if isinstance(document.get(key), list):
                document = document[key]
                break
    if not isinstance(document, list):
        found = (
            f"an object with keys: {_present(document)}"
            if isinstance(document, Mapping)
            else _kind(document)
        )
        raise DataError(
            f"{where}: expected a list of objects, or an object with that list under "
            f"'examples' or 'data'; got {found}"
        )
    for index, record in enumerate(document):
        yield f"{where} element {index}", record


def _csv_records(
    text: str,
    where: str,
    input_field: str,
    output_field: str | None,
    input_fields: Sequence[str] | None,
) -> Iterator[tuple[str, Any]]:
    import csv
    import io

    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames
    except csv.Error as e:
        raise _csv_error(e, where, reader.reader.line_num) from None
    if header is None:
        return  # an empty file: no header, no rows
    wanted = [*(input_fields if input_fields is not None else (input_field,))]
    if output_field is not None:
        wanted.append(output_field)
    for field in wanted:
        if field not in header:
            raise DataError(
                f"{where} line 1: missing field {field!r} in the header; "
                f"fields present: {_present(header)}"
            )
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as e:
            raise _csv_error(e, where, reader.reader.line_num) from None
        here = f"{where} line {reader.line_num}"
        if None in row:
            raise DataError(
                f"{here}: {len(header) + len(row[None])} values "
                f"but the header has {len(header)} columns"
            )
        # DictReader fills a short row's missing columns with None.
        yield here, {k: v for k, v in row.items() if v is not None}


def _csv_error(error: Exception, where: str, line: int) -> DataError:
    """A CSV the reader rejects (a field past its size limit, a stray quote), as a DataError."""
    return DataError(
        f"{where} line {max(line, 1)}: malformed CSV ({error}); quote fields holding commas, "
        "quotes or line breaks, or use JSONL for very long fields"
    )


# Files written before the stable name called it by its module path: they still load.
pg.JSONConvertible.register("sammo_core.data.DataTable", DataTable, override_existing=True)
