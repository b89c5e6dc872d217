"""Loading programs and data for the command line.

A PROGRAM is a saved program JSON (``sammo_core.dumps``), loaded safely; an existing prompt
file (markdown ``.md``/``.txt``, XML-tagged ``.xml``, or a jinja2 template ``.j2``/``.jinja``,
with ``{{ input }}`` where the input goes; see :mod:`sammo_core.prompt_files`); or a Python
file that defines, at module level, one of:

- ``program``: an :class:`~sammo_core.components.Output`, or
- ``make_program(examples)``: a function taking a :class:`~sammo_core.data.DataTable` of
  in-context examples and returning an ``Output``: ``run`` passes the ``--examples`` file (or
  None), ``optimize`` the ``--examples`` file or else its training split (after calling it
  once with None to read the file).

Optionally the file also sets ``INPUT_FIELD``/``OUTPUT_FIELD`` (or ``INPUT_FIELDS``, a list)
to say how to read the data file, and ``OBJECTIVE`` (a name such as ``"accuracy"``). Loading a
Python file runs it: only load files you trust, exactly as with ``python FILE``. A program
JSON written by ``sammo-core export`` takes the objective and fields from the manifest beside
it (``manifest-json.json``, when it describes the same program).
"""

from __future__ import annotations

import dataclasses
import runpy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pyglove as pg

from sammo_core.components import Output
from sammo_core.data import DataTable
from sammo_core.errors import ConfigError, DataError, SammoError
from sammo_core.serialization import loads, soft_folder

T = TypeVar("T")

__all__ = [
    "MAX_AUTO_LABELS",
    "ProgramFile",
    "load_data",
    "load_program",
    "renders_input",
    "resolve_labels",
    "with_call_options",
    "with_labels",
]


@dataclasses.dataclass(frozen=True)
class ProgramFile:
    """A loaded program with the data-reading hints its file declared."""

    program: Output
    path: Path
    input_field: str = "input"
    output_field: str = "output"
    input_fields: tuple[str, ...] | None = None
    objective: str | None = None
    #: A Python file's ``make_program``, to build the program again from other examples.
    make_program: Callable[[DataTable | None], Any] | None = None

    def with_examples(self, examples: DataTable) -> ProgramFile:
        """The program ``make_program`` builds from ``examples`` (itself without one)."""
        if self.make_program is None:
            return self
        program = _call_make_program(self.make_program, examples, self.path)
        if not isinstance(program, Output):
            raise ConfigError(
                f"{self.path}: make_program returned a {type(program).__name__}; return an "
                "Output(GenerateText(...))"
            )
        _check_renders_input(program, self.path)
        return dataclasses.replace(self, program=program)


def load_program(
    path: str | Path, examples: DataTable | None = None, *, append_input: bool = False
) -> ProgramFile:
    """Load a program from a ``.json``, ``.py`` or prompt file (see the module docstring).

    ``append_input`` is passed to :func:`~sammo_core.prompt_files.parse_prompt_file`: a prompt
    file without an input slot gets one as its last section instead of raising.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"program file {str(path)!r} does not exist")
    if path.suffix == ".json":
        program = loads(path.read_bytes(), soft_dir=soft_folder(path))  # soft prompts beside
        if not isinstance(program, Output):
            raise ConfigError(
                f"{path} holds a {type(program).__name__}; a program needs an Output root"
            )
        _check_renders_input(program, path)
        return _with_manifest(ProgramFile(program, path))
    from sammo_core.prompt_files import PROMPT_FILE_SUFFIXES, parse_prompt_file

    if path.suffix in PROMPT_FILE_SUFFIXES:
        return ProgramFile(parse_prompt_file(path, append_input=append_input), path)
    if path.suffix != ".py":
        suffixes = ", ".join(sorted({".py", ".json", *PROMPT_FILE_SUFFIXES}))
        raise ConfigError(f"program file {str(path)!r} must be one of: {suffixes}")
    namespace = _run_python_file(path)
    make = None
    if "program" in namespace:
        program = namespace["program"]
    elif callable(namespace.get("make_program")):
        make = namespace["make_program"]
        program = _call_make_program(make, examples, path)
    else:
        raise ConfigError(
            f"{path} defines neither 'program' nor 'make_program(examples)': set "
            "program = Output(GenerateText(...)) at module level"
        )
    if not isinstance(program, Output):
        raise ConfigError(
            f"{path}: 'program' is a {type(program).__name__}; wrap it: Output(GenerateText(...))"
        )
    _check_renders_input(program, path)
    fields = namespace.get("INPUT_FIELDS")
    if fields is not None and not (
        isinstance(fields, list | tuple) and all(isinstance(f, str) for f in fields)
    ):
        raise ConfigError(
            f"{path}: INPUT_FIELDS is {_short(fields)}; set it to a list of field names, e.g. "
            "INPUT_FIELDS = ['question', 'context']"
        )
    for name in ("INPUT_FIELD", "OUTPUT_FIELD", "OBJECTIVE"):
        if not isinstance(namespace.get(name, ""), str):
            raise ConfigError(
                f"{path}: {name} is {_short(namespace[name])}; set it to a string, e.g. "
                f"{name} = {_EXAMPLE_SETTING[name]!r}"
            )
    return ProgramFile(
        program,
        path,
        input_field=namespace.get("INPUT_FIELD", "input"),
        output_field=namespace.get("OUTPUT_FIELD", "output"),
        input_fields=tuple(fields) if fields else None,
        objective=namespace.get("OBJECTIVE"),
        make_program=make,
    )


_EXAMPLE_SETTING = {"INPUT_FIELD": "question", "OUTPUT_FIELD": "answer", "OBJECTIVE": "accuracy"}


def _short(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


#: With ``--labels auto``: outputs with at most this many distinct values are the label set.
MAX_AUTO_LABELS = 20


def resolve_labels(spec: str, tables: Sequence[Any]) -> list[str]:
    """The label set ``--labels`` names: comma-separated labels, or ``auto`` for the distinct
    gold outputs of ``tables`` (2 to :data:`MAX_AUTO_LABELS` of them, sorted).

    >>> from sammo_core.data import DataTable
    >>> resolve_labels("yes, no", []), resolve_labels("auto", [DataTable(["a", "b"], ["no", "yes"])])
    (['yes', 'no'], ['no', 'yes'])
    >>> resolve_labels("yes", [])
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: --labels 'yes' needs at least two distinct labels, e.g. --labels yes,no
    """  # noqa: E501
    if spec.strip() == "auto":
        seen = sorted({str(o).strip() for t in tables for o in t.outputs if o is not None})
        if not 2 <= len(seen) <= MAX_AUTO_LABELS:
            raise ConfigError(
                f"--labels auto found {len(seen)} distinct gold outputs, not a closed label set "
                f"of 2 to {MAX_AUTO_LABELS}; name the labels: --labels a,b,..."
            )
        return seen
    labels = [x.strip() for x in spec.split(",") if x.strip()]
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ConfigError(
            f"--labels {spec!r} needs at least two distinct labels, e.g. --labels yes,no"
        )
    return labels


def with_labels(
    program: Output, labels: Sequence[str] | None, *, calibrate: bool = False
) -> Output:
    """A copy of ``program`` whose root call lists ``labels`` (``--labels``), so a runner that
    scores labels answers by their likelihood, and that calibrates when ``calibrate``
    (``--calibrate``). ``labels=None`` keeps the program's own.

    >>> from sammo_core import GenerateText, InputData, MetaPrompt
    >>> program = Output(GenerateText(MetaPrompt([InputData()])))
    >>> scored = with_labels(program, ["yes", "no"], calibrate=True)
    >>> list(scored.child.labels), scored.calibration, list(program.child.labels)
    (['yes', 'no'], 'content_free', [])
    """
    override: dict[str, Any] = {}
    if labels is not None:
        override["child.labels"] = list(labels)
        call = program.child
        if list(call.verbalizer):
            # Each label keeps its word, whatever the new order; unless a label has none.
            words = dict(zip(call.labels, call.verbalizer, strict=True))
            override["child.verbalizer"] = (
                [words[x] for x in labels] if all(x in words for x in labels) else []
            )
        if list(program.label_prior):
            override["label_prior"] = []  # fitted for other labels
    if calibrate:
        override["calibration"] = "content_free"
    if not override:
        return program
    copy: Output = pg.clone(program, deep=True, override=override)
    return copy


def with_call_options(
    program: Output, *, mode: str | None = None, stop: Sequence[str] | None = None
) -> Output:
    """A copy of ``program`` prompted with ``mode`` and ``stop`` (``--mode``, ``--stop``).

    ``mode`` is set on every :class:`~sammo_core.components.GenerateText` of the program,
    nested calls included: it says how the model is prompted (a base model takes completion
    mode), and every call goes to the same model. ``stop`` replaces the stop sequences of the
    root call only, the one whose answer the program parses; a nested call writes other text
    (a summary, a draft) and keeps its own. ``None`` leaves a field as written; with both
    ``None`` the program itself is returned. ``program`` is never changed.

    >>> from sammo_core import GenerateText, InputData, MetaPrompt
    >>> program = Output(GenerateText(MetaPrompt(["Q:", InputData(), "A:"])))
    >>> base = with_call_options(program, mode="completion", stop=["\\n"])
    >>> base.child.mode, list(base.child.stop), program.child.mode
    ('completion', ['\\n'], 'chat')
    >>> with_call_options(program, mode="text")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: unknown GenerateText mode 'text'; use one of: chat, completion
    """
    if mode is None and stop is None:
        return program
    from sammo_core.selectors import find

    override: dict[str, Any] = {}
    if mode is not None:
        for match in find(program, "GenerateText"):
            override[f"{match.path}.mode"] = mode
    if stop is not None:
        override["child.stop"] = list(stop)
    copy: Output = pg.clone(program, deep=True, override=override)
    return copy


def _call_make_program(
    make: Callable[[DataTable | None], Any], examples: DataTable | None, path: Path
) -> Any:
    """``make(examples)``; its errors, as those of the file, become one ConfigError."""
    try:
        return _running(path, lambda: make(examples), "make_program(examples)")
    except ConfigError as exc:
        if isinstance(exc.__cause__, SammoError):  # already says what is wrong, in one line
            raise exc.__cause__ from None
        raise


def _run_python_file(path: Path) -> dict[str, Any]:
    """Run a program's ``.py`` file; its errors become one ConfigError naming file and line."""
    return _running(
        path, lambda: runpy.run_path(str(path), run_name="__sammo_program__"), "the program file"
    )


def _running(path: Path, call: Callable[[], T], what: str) -> T:
    """``call()``, code of the program file ``path``; errors name the file and line."""
    import traceback

    try:
        return call()
    except SyntaxError as exc:
        line = (exc.text or "").rstrip("\n")
        pointer = f"\n    {line}" if line else ""
        raise ConfigError(
            f"{exc.filename or path}, line {exc.lineno}: {type(exc).__name__}: {exc.msg}"
            f"{pointer}\nfix the program file and run again"
        ) from None
    except SystemExit as exc:  # exit() at module level: a script, not a program file
        raise ConfigError(
            f"{path}: running {what} called exit({exc.code!r}); a program file "
            "defines `program` and returns, so guard script code with "
            "if __name__ == '__main__':"
        ) from None
    except Exception as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
        where = f"{path}, line {frames[-1].lineno}" if frames else str(path)
        code = f"\n    {frames[-1].line}" if frames and frames[-1].line else ""
        raise ConfigError(
            f"{where}: running {what} raised {type(exc).__name__}: {exc}{code}\n"
            "fix the program file and run again"
        ) from exc


def renders_input(program: Output) -> bool:
    """Whether any node of ``program`` puts the current input into the prompt.

    ``InputData`` does, and so does a ``Template`` that reads ``input`` or ``inputs``.

    >>> from sammo_core import GenerateText, InputData, MetaPrompt, Section, Template
    >>> renders_input(Output(GenerateText(MetaPrompt([Section("Q", [InputData()])]))))
    True
    >>> renders_input(Output(GenerateText(MetaPrompt([Template("Answer {input}")]))))
    False
    >>> renders_input(Output(GenerateText(MetaPrompt([Template("Answer {{ input }}")]))))
    True
    """
    from sammo_core.components import InputData, Template
    from sammo_core.graph import compile

    return any(
        isinstance(node, InputData) or (isinstance(node, Template) and node.depends_on_input())
        for _, node in compile(program).graph.nodes(data="node")
    )


def _check_renders_input(program: Output, path: Path) -> None:
    """Refuse a program that would send the same prompt for every row."""
    if not renders_input(program):
        raise ConfigError(
            f"program file {str(path)!r} never renders the input, so every row would get the "
            "same prompt: add InputData() where the input goes (e.g. Section('Input', "
            "[InputData()])), or read it in a Template as {{ input }} (not {input})"
        )


def _with_manifest(loaded: ProgramFile) -> ProgramFile:
    """Take the objective and fields from the export manifest beside a program JSON."""
    from sammo_core.graph import compile
    from sammo_core.run_files import read_json

    manifest = loaded.path.with_name("manifest-json.json")
    if not manifest.is_file():
        return loaded
    try:
        data = read_json(manifest, what="export manifest", max_bytes=1 << 20)
    except DataError:  # not JSON: not a manifest of ours, so it says nothing about the program
        return loaded
    if not isinstance(data, dict) or data.get("program_hash") != compile(loaded.program).hash:
        return loaded
    for name in ("input_field", "output_field", "objective"):
        if not isinstance(data.get(name), str | None):
            raise DataError(
                f"{manifest}: {name} is {data[name]!r}, not a name; fix or delete the manifest "
                "(the program runs without it)"
            )
    fields = data.get("input_fields")
    if fields is not None and (
        not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)
    ):
        raise DataError(
            f"{manifest}: input_fields is {fields!r}, not a list of names; fix or delete the "
            "manifest (the program runs without it)"
        )
    return dataclasses.replace(
        loaded,
        input_field=data.get("input_field") or loaded.input_field,
        output_field=data.get("output_field") or loaded.output_field,
        input_fields=tuple(fields) if fields else loaded.input_fields,
        objective=data.get("objective") or loaded.objective,
    )


def load_data(
    path: str | Path,
    *,
    split: str | None = None,
    input_field: str = "input",
    output_field: str = "output",
    input_fields: tuple[str, ...] | None = None,
) -> DataTable:
    """Read a data file; ``split`` picks a named list from a JSON file holding several.

    A JSON file like ``{"train": [...], "test": [...]}`` is read with ``split="test"``.
    """
    path = Path(path)
    table = _load_table(path, split, input_field, output_field, input_fields)
    if len(table) == 0:
        where = f"{path} (split {split!r})" if split is not None else str(path)
        raise DataError(f"data file {where} has no rows; pass a file with at least one row")
    return table


def _load_table(
    path: Path,
    split: str | None,
    input_field: str,
    output_field: str,
    input_fields: tuple[str, ...] | None,
) -> DataTable:
    fields = list(input_fields) if input_fields else None
    if split is None:
        return DataTable.load(
            path, input_field=input_field, output_field=output_field, input_fields=fields
        )
    import orjson

    if path.suffix != ".json":
        raise ConfigError(f"--split needs a JSON file with named splits; {path} is not .json")
    try:
        document = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read JSON: {exc}") from exc
    if not isinstance(document, dict) or split not in document:
        names = ", ".join(map(repr, sorted(document))) if isinstance(document, dict) else "(none)"
        raise DataError(f"{path} has no split {split!r}; splits present: {names}")
    if not isinstance(document[split], list):
        raise DataError(
            f"{path}: split {split!r} holds {type(document[split]).__name__}, not a list of "
            'records such as [{"input": ..., "output": ...}]'
        )
    return DataTable.from_records(
        document[split], input_field=input_field, output_field=output_field, input_fields=fields
    )
