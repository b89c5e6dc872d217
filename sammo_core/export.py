"""Exporting a program as a portable file, with a manifest saying where it came from.

Five formats (:data:`EXPORT_FORMATS`):

* ``json`` -- :func:`sammo_core.dumps` of the program; :func:`sammo_core.loads` reads it back
  equal. The only format that keeps everything (examples chosen per input, minibatching,
  nested calls, call parameters).
* ``jinja`` -- a jinja2 template of the user message: rendered with ``input=X`` (jinja2's
  default settings) it gives exactly the prompt the program sends for ``X``, for every ``X``
  its formats insert verbatim (see below). Literal ``{{``/``{%``/``{#`` are escaped.
* ``markdown`` -- the user message for people to read, the input shown as ``{{ input }}``;
  literal braces are not escaped.
* ``poml`` -- a POML file (:func:`sammo_core.poml_export.program_to_poml`): the ``poml``
  package renders it, with the context ``{"input": X}``, to the prompt the program sends for
  ``X`` (up to :func:`~sammo_core.poml_files.normalize_poml`); one message, like ``jinja``.
* ``messages`` -- OpenAI chat messages, a JSON list of ``{"role", "content"}`` objects (the
  system message first when there is one); contents are jinja templates as above.

How: the program renders once, through the real compile/run path, for a sentinel input; the
sentinel is then replaced by the placeholder (:func:`program_template`). With ``input_fields``
the input is a dict and each field gets its own placeholder, ``{{ input.question }}``. The result
is checked against the program for probe inputs, so a prompt that transforms its input (a
``Template`` applying ``upper``, ``{% if %}`` on the input) raises :class:`ConfigError` instead
of exporting a wrong template.

Limits: a template inserts the input as it is, while a program writes it through its formats:
the data formats strip it and escape some lines (a line reading as a label, ``Output: x``), the
json data format escapes quotes, backslashes and newlines, the xml formats escape ``<`` before
a tag name and ``&`` before an entity, the markdown section format escapes lines reading as a
heading. For inputs these leave unchanged the template is exact. Examples selected by ``knn``
(chosen per input), ``inputs_per_call > 1`` (several inputs per call) and nested LLM calls
cannot be written as one template: those programs raise :class:`ConfigError` for every format
but ``json``. ``markdown`` and ``jinja`` hold one message: a program with a system message
raises :class:`ConfigError` there (export ``messages``).

>>> from sammo_core import GenerateText, MetaPrompt, Output, Section, Template
>>> program = Output(GenerateText(MetaPrompt([
...     Section("Task", ["Fill {{ slots }} in."]), Template("Text: {{ input }}")])))
>>> print(export_program(program, "jinja"))
# Task
<BLANKLINE>
Fill {{ '{' }}{ slots }} in.
<BLANKLINE>
Text: {{ input }}
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from sammo_core.components import Component, Examples, GenerateText, Output
from sammo_core.errors import ConfigError
from sammo_core.graph import compile
from sammo_core.jinja_text import escape_jinja
from sammo_core.prompt_files import render_request
from sammo_core.run_files import write_file
from sammo_core.selectors import find
from sammo_core.serialization import dumps

if TYPE_CHECKING:
    from sammo_core.soft import SoftPrompt

__all__ = [
    "EXPORT_FILES",
    "EXPORT_FORMATS",
    "MANIFEST_FILES",
    "MANIFEST_VERSION",
    "ExportFormat",
    "Manifest",
    "build_manifest",
    "call_parameters",
    "export_program",
    "exported_soft_prompt",
    "program_template",
    "soft_prompt_entry",
    "write_export",
]

ExportFormat: TypeAlias = Literal["markdown", "jinja", "json", "messages", "poml"]
#: The export formats.
EXPORT_FORMATS: tuple[str, ...] = ("jinja", "json", "markdown", "messages", "poml")
#: The file :func:`write_export` writes for each format.
EXPORT_FILES: Mapping[str, str] = MappingProxyType(
    {
        "jinja": "prompt.jinja",
        "json": "program.json",
        "markdown": "prompt.md",
        "messages": "messages.json",
        "poml": "prompt.poml",
    }
)
#: The manifest :func:`write_export` writes beside each format's file: one per format, so
#: exporting several formats into one folder keeps every manifest.
MANIFEST_FILES: Mapping[str, str] = MappingProxyType(
    {name: f"manifest-{name}.json" for name in EXPORT_FORMATS}
)
MANIFEST_VERSION = 1

_SENTINEL = "SammoInputSentinel"
_PROBES = ("probe alpha", "Probe {{ beta }} 42")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCORE_KEYS = ("value", "ci_low", "ci_high", "n")


# -- templates -------------------------------------------------------------------------------


def program_template(
    program: Output,
    *,
    input_fields: Sequence[str] = (),
    constants: Mapping[str, Any] | None = None,
    escape: bool = True,
) -> list[tuple[str, str]]:
    """The program's messages as ``(role, template)`` pairs, the input as a placeholder.

    ``escape=True`` gives jinja2 templates (literal jinja syntax escaped); ``escape=False``
    gives the text for reading. ``input_fields`` makes the input a dict with these fields, each
    its own placeholder. ``constants`` are the data table's constants the prompt may read.
    Raises :class:`ConfigError` for programs no template can express (see the module).

    >>> from sammo_core import GenerateText, MetaPrompt, Output, Template
    >>> program = Output(GenerateText(MetaPrompt([Template("Q: {{ input.q }}")]), "Be brief."))
    >>> program_template(program, input_fields=["q"])
    [('system', 'Be brief.'), ('user', 'Q: {{ input.q }}')]
    """
    _check_exportable(program)
    fields = list(dict.fromkeys(input_fields))
    base = _sentinel(program)
    placeholders: dict[str, str] = {}
    if fields:
        value: Any = {}
        for i, name in enumerate(fields):
            token = f"{base}{i}x"
            value[name] = token
            placeholders[token] = f"input.{name}" if _plain_attribute(name) else _subscript(name)
    else:
        value = base
        placeholders[base] = "input"
    pattern = re.compile("|".join(re.escape(t) for t in sorted(placeholders, key=len)[::-1]))
    messages = [
        (str(m.role), m.content)
        for m in render_request(program, value, constants=constants).messages
    ]
    templates = [(role, _substitute(text, pattern, placeholders, True)) for role, text in messages]
    # Checked even for text to read: a prompt that transforms its input has no honest placeholder.
    _verify(program, templates, fields, constants)
    if escape:
        return templates
    return [(role, _substitute(text, pattern, placeholders, False)) for role, text in messages]


def _check_exportable(program: Output) -> None:
    if not isinstance(program, Output):
        raise ConfigError(
            f"export needs an Output program; got {type(program).__name__} "
            "(wrap it: Output(GenerateText(prompt)))"
        )
    if program.inputs_per_call > 1:
        raise ConfigError(
            f"inputs_per_call={program.inputs_per_call} packs several inputs into one prompt, "
            "which one template cannot express; export format 'json' keeps it (or set "
            "inputs_per_call=1)"
        )
    for match in find(program, "Examples"):
        node = match.node
        if isinstance(node, Examples) and node.selection == "knn":
            raise ConfigError(
                f"the examples at {match.path} are chosen per input (selection='knn'), which a "
                "static prompt cannot express; export format 'json' keeps them (or use "
                "selection='first', 'random' or 'balanced')"
            )


def _sentinel(program: Component) -> str:
    text = dumps(program)
    sentinel = _SENTINEL
    while sentinel in text:
        sentinel += "Z"
    return sentinel


def _plain_attribute(name: str) -> bool:
    return bool(_IDENTIFIER.fullmatch(name)) and not hasattr(dict, name)


def _subscript(name: str) -> str:
    return f"input[{json.dumps(name)}]"


def _substitute(text: str, pattern: re.Pattern[str], names: Mapping[str, str], escape: bool) -> str:
    parts: list[str] = []
    pos = 0
    for match in pattern.finditer(text):
        literal = text[pos : match.start()]
        parts += [escape_jinja(literal, final=False) if escape else literal]
        parts.append(f"{{{{ {names[match.group(0)]} }}}}")
        pos = match.end()
    parts.append(escape_jinja(text[pos:]) if escape else text[pos:])
    return "".join(parts)


def _verify(
    program: Output,
    templates: list[tuple[str, str]],
    fields: list[str],
    constants: Mapping[str, Any] | None,
) -> None:
    import jinja2

    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    for probe in _PROBES:
        value: Any = {name: f"{probe} {i}" for i, name in enumerate(fields)} if fields else probe
        actual = [m.content for m in render_request(program, value, constants=constants).messages]
        rendered = [environment.from_string(t).render(input=value) for _, t in templates]
        if rendered != actual:
            raise ConfigError(
                f"the prompt transforms its input (for input {value!r} the program sends "
                f"{actual[-1][:200]!r}, the template gives {rendered[-1][:200]!r}), which a "
                "template cannot express; export format 'json' keeps the program whole"
            )


def export_program(
    program: Output,
    format: ExportFormat,
    *,
    input_fields: Sequence[str] = (),
    constants: Mapping[str, Any] | None = None,
) -> str:
    """The program as the text of a portable file in ``format`` (see the module docstring).

    >>> from sammo_core import GenerateText, MetaPrompt, Output, Template, loads
    >>> program = Output(GenerateText(MetaPrompt([Template("Q: {{ input }}")]), "Be brief."))
    >>> print(export_program(program, "messages"))
    [
      {
        "role": "system",
        "content": "Be brief."
      },
      {
        "role": "user",
        "content": "Q: {{ input }}"
      }
    ]
    >>> loads(export_program(program, "json")) == program
    True
    """
    if format == "json":
        if not isinstance(program, Output):
            raise ConfigError(f"export needs an Output program; got {type(program).__name__}")
        return dumps(program)
    if format not in EXPORT_FORMATS:
        raise ConfigError(
            f"unknown export format {format!r}; use one of: {', '.join(EXPORT_FORMATS)}"
        )
    if format == "poml":
        from sammo_core.poml_export import program_to_poml

        templates = program_template(program, input_fields=input_fields, constants=constants)
        return program_to_poml(program, templates)
    templates = program_template(
        program, input_fields=input_fields, constants=constants, escape=format != "markdown"
    )
    if format == "messages":
        messages = [{"role": role, "content": content} for role, content in templates]
        return json.dumps(messages, ensure_ascii=False, indent=2)
    if len(templates) > 1:
        raise ConfigError(
            f"the program has a system message, which a {format} file cannot hold; export "
            "format 'messages' or 'json' keeps it"
        )
    return templates[0][1]


# -- manifests -------------------------------------------------------------------------------


def _version() -> str:
    try:
        return importlib.metadata.version("sammo-core")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclasses.dataclass(frozen=True)
class Manifest:
    """Where an exported program came from: what it is, how it scored, what it cost.

    Validated on construction; :meth:`to_dict` gives the JSON-ready form and
    :meth:`from_dict` reads it back, rejecting unknown keys. ``scores`` maps an objective's
    name to its value, 95% interval and sample size (``Score.to_dict()`` fields, the
    per-item list dropped). ``created`` is an ISO 8601 time in UTC. ``objective`` (as
    ``--objective`` takes it, e.g. ``label_accuracy:yes,no``) and the data fields the program
    was optimized with travel with it, so ``sammo-core run`` on the exported ``program.json``
    scores it the same way. ``call`` holds the parameters of the program's LLM call that a
    template file cannot show (:func:`call_parameters`): a ``completion``-mode prompt must go to
    a completions endpoint as raw text, cut at its ``stop`` sequences, not into a chat template.
    ``soft_prompt`` describes the program's learned :class:`~sammo_core.soft.SoftPrompt`
    (:func:`soft_prompt_entry`): its size, init text, the sha256 of its tensor, and ``adapter``,
    the folder beside the manifest that holds it as a PEFT prompt-tuning adapter (``None`` when
    the export wrote none); only a runner that takes input embeddings can run such a program.

    >>> m = Manifest(program_hash="ab12", model="gpt-4o-mini", created="2024-05-01T12:00:00+00:00")
    >>> Manifest.from_dict(m.to_dict()) == m
    True
    """

    program_hash: str
    model: str
    created: str
    scores: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    data_hash: str | None = None
    budget_used: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    export_format: str | None = None
    objective: str | None = None
    input_field: str | None = None
    output_field: str | None = None
    input_fields: tuple[str, ...] | None = None
    call: Mapping[str, Any] | None = None
    soft_prompt: Mapping[str, Any] | None = None
    #: A program searched on several models: each model's call settings (``mode``, ``stop``),
    #: which may differ from the program's own ``call`` (a base model: completion mode).
    models: Mapping[str, Mapping[str, Any]] | None = None
    sammo_core_version: str = dataclasses.field(default_factory=_version)
    format_version: int = MANIFEST_VERSION

    def __post_init__(self) -> None:
        for name in ("program_hash", "model", "created", "sammo_core_version"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"manifest {name} must be a non-empty string")
        if self.format_version != MANIFEST_VERSION:
            raise ConfigError(
                f"manifest format version {self.format_version!r} is not supported; this "
                f"sammo-core reads version {MANIFEST_VERSION}"
            )
        try:
            created = datetime.fromisoformat(self.created)
        except ValueError:
            raise ConfigError(
                f"manifest created must be an ISO 8601 time; got {self.created!r}"
            ) from None
        if created.utcoffset() is None:
            raise ConfigError(f"manifest created must carry a UTC offset; got {self.created!r}")
        if self.data_hash is not None and not isinstance(self.data_hash, str):
            raise ConfigError(
                f"manifest data_hash must be a string or None; got {self.data_hash!r}"
            )
        for name in ("objective", "input_field", "output_field"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(
                    f"manifest {name} must be a non-empty string or None; got {value!r}"
                )
        if self.input_fields is not None:
            if isinstance(self.input_fields, str) or not all(
                isinstance(f, str) and f for f in self.input_fields
            ):
                raise ConfigError(
                    f"manifest input_fields must be a list of field names or None; got "
                    f"{self.input_fields!r}"
                )
            object.__setattr__(self, "input_fields", tuple(self.input_fields))
        if self.call is not None:
            if not isinstance(self.call, Mapping) or not set(self.call) <= set(_CALL_KEYS):
                raise ConfigError(
                    f"manifest call must map some of {', '.join(_CALL_KEYS)}; got {self.call!r}"
                )
            object.__setattr__(self, "call", MappingProxyType(dict(self.call)))
        if self.soft_prompt is not None:
            if not isinstance(self.soft_prompt, Mapping) or set(self.soft_prompt) != set(
                _SOFT_KEYS
            ):
                raise ConfigError(
                    f"manifest soft_prompt must map exactly {', '.join(_SOFT_KEYS)}; got "
                    f"{self.soft_prompt!r}"
                )
            object.__setattr__(self, "soft_prompt", MappingProxyType(dict(self.soft_prompt)))
        if self.export_format is not None and self.export_format not in EXPORT_FORMATS:
            raise ConfigError(
                f"unknown export format {self.export_format!r}; use one of: "
                f"{', '.join(EXPORT_FORMATS)}"
            )
        object.__setattr__(self, "scores", _scores(self.scores))
        object.__setattr__(self, "budget_used", _budget(self.budget_used))

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON-ready data, in a stable key order."""
        return {
            "format_version": self.format_version,
            "sammo_core_version": self.sammo_core_version,
            "program_hash": self.program_hash,
            "model": self.model,
            "scores": {name: dict(score) for name, score in self.scores.items()},
            "data_hash": self.data_hash,
            "budget_used": dict(self.budget_used),
            "created": self.created,
            "export_format": self.export_format,
            "objective": self.objective,
            "input_field": self.input_field,
            "output_field": self.output_field,
            "input_fields": None if self.input_fields is None else list(self.input_fields),
            "call": None if self.call is None else dict(self.call),
            "soft_prompt": None if self.soft_prompt is None else dict(self.soft_prompt),
            **(
                {}
                if self.models is None
                else {"models": {m: dict(v) for m, v in self.models.items()}}
            ),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        """Read :meth:`to_dict` output back; unknown or missing keys raise ConfigError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown manifest keys: {', '.join(unknown)}; known: {sorted(known)}"
            )
        missing = sorted(k for k in ("program_hash", "model", "created") if k not in data)
        if missing:
            raise ConfigError(f"manifest is missing keys: {', '.join(missing)}")
        return cls(**dict(data))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _scores(scores: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    if not isinstance(scores, Mapping):
        raise ConfigError(f"scores must map names to Score.to_dict() dicts; got {scores!r}")
    out: dict[str, dict[str, Any]] = {}
    for name, score in scores.items():
        if not isinstance(name, str) or not isinstance(score, Mapping):
            raise ConfigError(
                f"scores must map names to Score.to_dict() dicts; got {name!r}: {score!r}"
            )
        unknown = sorted(set(score) - {*_SCORE_KEYS, "name", "per_item"})
        if unknown:
            raise ConfigError(f"score {name!r} has unknown keys {unknown}; use Score.to_dict()")
        if not _number(score.get("value")):
            raise ConfigError(f"score {name!r} needs a finite number 'value'; got {score!r}")
        for key in ("ci_low", "ci_high"):
            if score.get(key) is not None and not _number(score[key]):
                raise ConfigError(f"score {name!r} {key} must be a number or None; got {score!r}")
        n = score.get("n", 0)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"score {name!r} n must be an int >= 0; got {n!r}")
        out[name] = {
            "value": score["value"],
            "ci_low": score.get("ci_low"),
            "ci_high": score.get("ci_high"),
            "n": n,
        }
    return out


def _budget(budget: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(budget, Mapping):
        raise ConfigError(f"budget_used must be a dict of names to numbers; got {budget!r}")
    for key, value in budget.items():
        if not isinstance(key, str) or not (_number(value) or value is None):
            raise ConfigError(
                f"budget_used must map names to numbers (calls, tokens, cost_usd); got "
                f"{key!r}: {value!r}"
            )
    return dict(budget)


_CALL_KEYS = (
    "mode",
    "stop",
    "temperature",
    "max_tokens",
    "seed",
    "labels",
    "verbalizer",
    "calibration",
    "label_prior",
)
_SOFT_KEYS = ("n_tokens", "init", "sha256", "adapter")


def exported_soft_prompt(program: Output) -> SoftPrompt | None:
    """The program's soft prompt as an export takes it; ``None`` without one.

    A soft prompt that was never trained has no tensor to export: ConfigError names the
    command that trains it.

    >>> from sammo_core import GenerateText, MetaPrompt, Output
    >>> from sammo_core.soft import SoftPrompt
    >>> exported_soft_prompt(Output(GenerateText(MetaPrompt(["Q:"])))) is None
    True
    >>> exported_soft_prompt(Output(GenerateText(MetaPrompt([SoftPrompt(n_tokens=2), "Q:"]))))
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: the program holds an untrained SoftPrompt: ...
    """
    from sammo_core.soft import SoftPrompt

    found = [m.node for m in find(program, "SoftPrompt")]
    if not found:
        return None
    soft = found[0]
    assert isinstance(soft, SoftPrompt)
    if soft.tensor is None:
        raise ConfigError(
            "the program holds an untrained SoftPrompt: train it first (sammo-core optimize "
            "--strategy prompt-tuning) or remove it before exporting"
        )
    return soft


def soft_prompt_entry(program: Output, adapter: str | None = None) -> dict[str, Any] | None:
    """The manifest's description of the program's soft prompt; ``None`` without one.

    ``adapter`` names the folder (relative to the manifest) where the export wrote the soft
    prompt as a PEFT adapter (see :func:`exported_soft_prompt` for what can be exported).

    >>> from sammo_core import GenerateText, MetaPrompt, Output
    >>> from sammo_core.soft import SoftPrompt, SoftTensor
    >>> soft = SoftPrompt(n_tokens=2, init="Is it?", tensor=SoftTensor.from_values([[1.0], [2.0]]))
    >>> entry = soft_prompt_entry(Output(GenerateText(MetaPrompt([soft, "Q:"]))), "adapter")
    >>> entry["n_tokens"], entry["init"], entry["adapter"], len(entry["sha256"])
    (2, 'Is it?', 'adapter', 64)
    """
    soft = exported_soft_prompt(program)
    if soft is None:
        return None
    assert soft.tensor is not None  # exported_soft_prompt refuses an untrained one
    return {
        "n_tokens": soft.n_tokens,
        "init": soft.init,
        "sha256": soft.tensor.digest,
        "adapter": adapter,
    }


def call_parameters(program: Output) -> dict[str, Any] | None:
    """The parameters of the program's LLM call that change what a model is asked or returns.

    ``None`` when the program's output is not one :class:`GenerateText` call.

    >>> from sammo_core import GenerateText, MetaPrompt, Output
    >>> call_parameters(Output(GenerateText(MetaPrompt(["Q: 2+2?", "A:"]), mode="completion",
    ...     stop=["\\n"], max_tokens=4)))
    {'mode': 'completion', 'stop': ['\\n'], 'temperature': 0.0, 'max_tokens': 4, 'seed': 0}

    A call that lists its labels adds how answers are read: the labels, the verbalizer, the
    calibration and its fitted prior (which the exported program holds, so it makes no
    calibration calls).
    """
    call = program.child if isinstance(program, Output) else None
    if not isinstance(call, GenerateText):
        return None
    parameters: dict[str, Any] = {
        "mode": call.mode,
        "stop": list(call.stop),
        "temperature": call.temperature,
        "max_tokens": call.max_tokens,
        "seed": call.seed,
    }
    if call.labels:  # answers scored by label likelihood: how they are read
        labels = [str(x) for x in call.labels]
        prior = list(program.label_prior)
        parameters |= {
            "labels": labels,
            "verbalizer": [str(x) for x in call.verbalizer] or None,
            "calibration": program.calibration,
            "label_prior": dict(zip(labels, prior, strict=True)) if prior else None,
        }
    return parameters


def build_manifest(
    program: Output,
    *,
    model: str,
    scores: Mapping[str, Mapping[str, Any]],
    data_hash: str | None,
    budget_used: Mapping[str, Any],
    created: datetime | None = None,
    export_format: str | None = None,
    objective: str | None = None,
    input_field: str | None = None,
    output_field: str | None = None,
    input_fields: Sequence[str] | None = None,
    adapter: str | None = None,
    models: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The manifest of ``program`` as JSON-ready data (see :class:`Manifest`).

    ``created`` defaults to now; it must be timezone-aware and is written in UTC. The program
    hash is ``compile(program).hash``; the version is the installed sammo-core's (``unknown``
    when not installed). ``objective`` and the field names say how to score and read data for
    the program (see :class:`Manifest`); ``adapter`` names the folder where a soft prompt was
    exported as a PEFT adapter (:func:`soft_prompt_entry`).

    >>> from datetime import datetime, timezone
    >>> from sammo_core import GenerateText, MetaPrompt, Output
    >>> program = Output(GenerateText(MetaPrompt(["Say hi."])))
    >>> m = build_manifest(program, model="scripted", scores={"accuracy": {"value": 0.9}},
    ...     data_hash=None, budget_used={"calls": 3},
    ...     created=datetime(2024, 5, 1, 14, tzinfo=timezone.utc))
    >>> m["created"], m["scores"]["accuracy"]["value"], m["program_hash"] == compile(program).hash
    ('2024-05-01T14:00:00+00:00', 0.9, True)
    """
    if created is None:
        created = datetime.now(UTC)
    elif not isinstance(created, datetime) or created.utcoffset() is None:
        raise ConfigError(
            f"created must be a timezone-aware datetime (datetime.now(timezone.utc)); got "
            f"{created!r}"
        )
    return Manifest(
        program_hash=compile(program).hash,
        model=model,
        created=created.astimezone(UTC).isoformat(),
        scores=scores,
        data_hash=data_hash,
        budget_used=budget_used,
        export_format=export_format,
        objective=objective,
        input_field=input_field,
        output_field=output_field,
        input_fields=None if input_fields is None else tuple(input_fields),
        call=call_parameters(program),
        soft_prompt=soft_prompt_entry(program, adapter),
        models=None if models is None else {m: dict(v) for m, v in models.items()},
    ).to_dict()


# -- files -----------------------------------------------------------------------------------


def write_export(
    program: Output,
    out_dir: str | os.PathLike[str],
    format: ExportFormat,
    manifest: Mapping[str, Any],
    *,
    input_fields: Sequence[str] = (),
    constants: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write the export file and its manifest beside it; returns both paths.

    Files are named by :data:`EXPORT_FILES` and :data:`MANIFEST_FILES` (one manifest per
    format, so exports of several formats share a folder); each is written to a temporary file
    in ``out_dir`` and renamed into place, so readers never see half a file, and the manifest is
    written last. Files get the usual permissions (``0o666`` less the umask), not the private
    ``0o600`` of a temporary file. The manifest (from :func:`build_manifest`) must describe
    ``program`` (same hash); its ``export_format`` is set to ``format``. ``prompt.jinja`` holds
    the template exactly; the other files end with a newline.
    """
    data = dict(manifest)
    expected = compile(program).hash
    if data.get("program_hash") != expected:
        raise ConfigError(
            f"the manifest describes program {data.get('program_hash')!r}, not this one "
            f"({expected!r}): build it with build_manifest(program, ...)"
        )
    data["export_format"] = format
    checked = Manifest.from_dict(data).to_dict()
    text = export_program(program, format, input_fields=input_fields, constants=constants)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Never through a link planted in the folder; fsync'ed, as exports are for keeping.
    export_text = text if format == "jinja" else text + "\n"
    export_path = write_file(out, EXPORT_FILES[format], export_text, fsync=True)
    manifest_text = json.dumps(checked, indent=2) + "\n"
    manifest_path = write_file(out, MANIFEST_FILES[format], manifest_text, fsync=True)
    return export_path, manifest_path
