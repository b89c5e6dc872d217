"""Search priors: what paid off on other tasks, to start the next search from.

A search learns two things that may carry over to a new task: which operators' children beat
their parents (per operator, tries and wins) and which values the winner chose for the fields
that operators change (the section format, the data format, the example count...). A
:class:`Priors` holds both for one or more tasks; :meth:`Priors.merge` sums tasks (what
``sammo-core bench run`` writes for a suite) and :func:`apply_priors` hands them to a mutator
before a search starts:

* every :class:`~mutators.mixture.Mixture` gets pseudo-counts for the operators it holds (the
  credit of the operators under each, summed), scaled down to at most ``strength`` pseudo-tries
  per operator so that the new task's own evidence overrules the priors after a few children;
* every :class:`~mutators.fields.ChangeField` operator draws values that won elsewhere first
  more often (weight ``1 + wins``, capped at ``strength``), never ruling another value out.

Operators or fields that the priors do not know start as they would without priors; credit for
operators the mutator does not hold is ignored (another suite's operators).

The file (``priors.json``) is JSON::

    {"format": "sammo-core priors", "version": 1,
     "tasks": {"implicatures": {
         "operators": {"ChangeSectionFormat": {"tries": 12, "wins": 5}, ...},
         "choices": {"MetaPrompt.section_format": {"xml": 2}, ...}}, ...}}

Tasks stay apart in the file so that ``bench run --priors`` can leave each task's own searches
out of the priors it starts that task from (:meth:`Priors.without`).

>>> from mutators.format import ChangeSectionFormat
>>> from mutators.mixture import Mixture
>>> from mutators.structure import DropSection
>>> a = Priors({"a": Learned({"ChangeSectionFormat": (6, 4), "DropSection": (6, 0)},
...                          {"MetaPrompt.section_format": {"xml": 1}})})
>>> b = Priors({"b": Learned({"ChangeSectionFormat": (2, 2)},
...                          {"MetaPrompt.section_format": {"xml": 1}})})
>>> both = Priors.merge([a, b])
>>> both.tasks, both.total.operators["ChangeSectionFormat"]
(('a', 'b'), (8, 6))
>>> both.without("b").total.operators["ChangeSectionFormat"]
(6, 4)
>>> mix = Mixture([DropSection(), ChangeSectionFormat()])
>>> applied = apply_priors(mix, both, strength=4)
>>> round(mix.weight("ChangeSectionFormat"), 2), round(mix.weight("DropSection"), 2)
(0.67, 0.17)
>>> mix.operators[1].preferences
{'xml': 2.0}
>>> applied
'priors of 2 tasks: credit for 2 of 2 operators, preferred values for 1 field'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from mutators.base import Mutator
from mutators.fields import ChangeField
from mutators.mixture import Mixture
from sammo_core.components import Output
from sammo_core.errors import ConfigError, DataError
from sammo_core.selectors import find

__all__ = [
    "DEFAULT_STRENGTH",
    "FORMAT",
    "Learned",
    "Priors",
    "apply_priors",
    "chosen_values",
    "leaves",
    "no_priors",
]

#: The ``format`` field of a priors file.
FORMAT = "sammo-core priors"
VERSION = 1
#: Pseudo-tries an operator's prior credit is worth at most (the new task's evidence wins
#: after about as many of its own children).
DEFAULT_STRENGTH = 8.0


@dataclasses.dataclass(frozen=True)
class Learned:
    """What searches on one task learned: ``operators`` maps an operator name to
    ``(tries, wins)``; ``choices`` maps a field key (``NodeType.field``, see
    :attr:`~mutators.fields.ChangeField.choice_key`) to how many winners chose each value (as
    text) over their start's."""

    operators: Mapping[str, tuple[int, int]]
    choices: Mapping[str, Mapping[str, int]] = dataclasses.field(default_factory=dict)

    def __add__(self, other: Learned) -> Learned:
        operators = dict(self.operators)
        for name, (t, w) in other.operators.items():
            old = operators.get(name, (0, 0))
            operators[name] = (old[0] + t, old[1] + w)
        choices = {key: dict(counts) for key, counts in self.choices.items()}
        for key, counts in other.choices.items():
            into = choices.setdefault(key, {})
            for value, count in counts.items():
                into[value] = into.get(value, 0) + count
        return Learned(operators, choices)

    def to_json(self) -> dict[str, Any]:
        return {
            "operators": {
                name: {"tries": t, "wins": w} for name, (t, w) in sorted(self.operators.items())
            },
            "choices": {key: dict(sorted(v.items())) for key, v in sorted(self.choices.items())},
        }

    @staticmethod
    def from_json(data: Any, where: str) -> Learned:
        """Read :meth:`to_json`'s output; errors name ``where`` (file and task)."""
        if not isinstance(data, dict):
            raise DataError(f"{where}: must be an object; got {data!r:.80}")
        raw_ops = data.get("operators", {})
        if not isinstance(raw_ops, dict):
            raise DataError(f'{where}: "operators" must be an object; got {raw_ops!r:.80}')
        operators: dict[str, tuple[int, int]] = {}
        for name, entry in raw_ops.items():
            t = entry.get("tries") if isinstance(entry, dict) else None
            w = entry.get("wins") if isinstance(entry, dict) else None
            if not (_count(t) and _count(w) and w <= t):  # type: ignore[operator]
                raise DataError(
                    f"{where}: operator {name!r} needs whole numbers 0 <= wins <= tries; "
                    f"got {entry!r:.80}"
                )
            operators[name] = (t, w)  # type: ignore[assignment]
        raw_choices = data.get("choices", {})
        if not isinstance(raw_choices, dict):
            raise DataError(f'{where}: "choices" must be an object; got {raw_choices!r:.80}')
        choices: dict[str, dict[str, int]] = {}
        for key, counts in raw_choices.items():
            if not isinstance(counts, dict) or not all(map(_count, counts.values())):
                raise DataError(
                    f"{where}: choices of {key!r} must map values to whole numbers >= 0; "
                    f"got {counts!r:.80}"
                )
            choices[key] = dict(counts)
        return Learned(operators, choices)


@dataclasses.dataclass(frozen=True)
class Priors:
    """What searches learned, task by task (``by_task``), so that a task's own searches can
    be left out of the priors it starts from (:meth:`without`)."""

    by_task: Mapping[str, Learned]

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.by_task)

    @property
    def total(self) -> Learned:
        """Every task's credit and choices, summed."""
        total = Learned({}, {})
        for learned in self.by_task.values():
            total = total + learned
        return total

    @staticmethod
    def merge(many: Iterable[Priors]) -> Priors:
        """Several priors as one: a task learned in several (seeds) is summed."""
        by_task: dict[str, Learned] = {}
        for p in many:
            for task, learned in p.by_task.items():
                by_task[task] = by_task[task] + learned if task in by_task else learned
        return Priors(by_task)

    def without(self, task: str) -> Priors:
        """These priors less what was learned on ``task`` (leave-one-task-out: a task's own
        searches never steer it)."""
        return Priors({t: v for t, v in self.by_task.items() if t != task})

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "tasks": {task: learned.to_json() for task, learned in self.by_task.items()},
        }

    def dumps(self) -> bytes:
        """The file's bytes (sorted, indented: diff-friendly)."""
        return orjson.dumps(self.to_json(), option=orjson.OPT_INDENT_2) + b"\n"

    @staticmethod
    def from_json(data: Any, source: str = "priors") -> Priors:
        """Read what :meth:`to_json` wrote, naming ``source`` in every error.

        >>> ok = {"format": "sammo-core priors", "version": 1,
        ...       "tasks": {"t": {"operators": {"DropSection": {"tries": 3, "wins": 1}}}}}
        >>> Priors.from_json(ok).total.operators
        {'DropSection': (3, 1)}
        >>> ok["tasks"]["t"]["operators"]["DropSection"]["wins"] = 4
        >>> Priors.from_json(ok, "p.json")
        Traceback (most recent call last):
        ...
        sammo_core.errors.DataError: p.json, task 't': operator 'DropSection' needs whole \
numbers 0 <= wins <= tries; got {'tries': 3, 'wins': 4}
        """
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise DataError(
                f'{source}: not a priors file (no "format": "{FORMAT}"); write one with '
                "sammo-core optimize (RUN_DIR/priors.json) or bench run (OUT/priors.json)"
            )
        if data.get("version") != VERSION:
            raise DataError(
                f"{source}: priors version {data.get('version')!r}; this sammo-core reads "
                f"version {VERSION}"
            )
        tasks = data.get("tasks", {})
        if not isinstance(tasks, dict):
            raise DataError(f'{source}: "tasks" must be an object; got {tasks!r:.80}')
        return Priors(
            {
                str(task): Learned.from_json(entry, f"{source}, task {task!r}")
                for task, entry in tasks.items()
            }
        )

    @staticmethod
    def load(path: str | Path) -> Priors:
        """Read a priors file; a missing or broken file is one :class:`ConfigError` line."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"cannot read priors file {str(path)!r}: {exc.strerror or exc}; pass a "
                "priors.json written by optimize or bench run, or --priors none"
            ) from None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise DataError(f"{path}: not JSON ({exc}); is it a priors.json file?") from None
        return Priors.from_json(data, str(path))


def no_priors(spec: str) -> bool:
    """Whether ``--priors SPEC`` asks for none (``none``, any case).

    >>> no_priors(" None"), no_priors("runs/a/priors.json")
    (True, False)
    """
    return spec.strip().lower() == "none"


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def leaves(mutator: Mutator) -> Iterator[Mutator]:
    """The operators under ``mutator`` that are not mixtures, depth first (itself if none)."""
    if isinstance(mutator, Mixture):
        for op in mutator.operators:
            yield from leaves(op)
    else:
        yield mutator


def _values(op: ChangeField[Any], program: Output) -> list[str]:
    return [
        str(op.current(m.node))
        for m in find(program, op.selector)
        if isinstance(m.node, op.node_type)
    ]


def chosen_values(mutator: Mutator, start: Output, winner: Output) -> dict[str, dict[str, int]]:
    """The values the winner holds, for each field an operator of ``mutator`` changes, where
    they differ from the start's (a choice the search made, not one it kept).

    >>> from sammo_core import GenerateText, InputData, MetaPrompt, Output, Section
    >>> from mutators.format import ChangeDataFormat, ChangeSectionFormat
    >>> start = Output(GenerateText(MetaPrompt([Section("Task", ["Say yes."]), InputData()])))
    >>> from mutators.base import replace
    >>> winner = replace(start, "child.prompt.section_format", "xml")
    >>> chosen_values(Mixture([ChangeSectionFormat(), ChangeDataFormat()]), start, winner)
    {'MetaPrompt.section_format': {'xml': 1}}
    """
    chosen: dict[str, dict[str, int]] = {}
    for op in leaves(mutator):
        if not isinstance(op, ChangeField):
            continue
        before, after = _values(op, start), _values(op, winner)
        if before == after:
            continue
        counts = chosen.setdefault(op.choice_key, {})
        for value in after:
            if value not in before:
                counts[value] = counts.get(value, 0) + 1
        if not counts:
            del chosen[op.choice_key]
    return chosen


def _scaled(tries: int, wins: int, strength: float) -> tuple[float, float]:
    if tries <= strength:
        return float(tries), float(wins)
    return strength, wins * strength / tries


def apply_priors(mutator: Mutator, priors: Priors, *, strength: float = DEFAULT_STRENGTH) -> str:
    """Give ``mutator`` the credit and choices of ``priors`` (see the module docstring);
    returns a one-line summary of what took effect."""
    if (
        isinstance(strength, bool)
        or not isinstance(strength, (int, float))
        or not (math.isfinite(strength) and strength > 0)
    ):
        raise ConfigError(f"priors strength must be a finite number > 0; got {strength!r}")
    total = priors.total
    known: set[str] = set()
    credited: set[str] = set()

    def visit(op: Mutator) -> None:
        if isinstance(op, Mixture):
            credit: dict[str, tuple[float, float]] = {}
            for child in op.operators:
                names = child.operator_names()
                known.update(names)
                tries = sum(total.operators.get(n, (0, 0))[0] for n in names)
                wins = sum(total.operators.get(n, (0, 0))[1] for n in names)
                if tries:
                    credit[child.name] = _scaled(tries, wins, strength)
                    credited.update(n for n in names if n in total.operators)
                visit(child)
            op.set_priors(credit)

    visit(mutator)
    fields = 0
    for op in leaves(mutator):
        if isinstance(op, ChangeField):
            counts = total.choices.get(op.choice_key, {})
            op.set_preferences({v: min(float(c), strength) for v, c in counts.items()})
            fields += bool(op.preferences)
    plural = "s" if len(priors.tasks) != 1 else ""
    return (
        f"priors of {len(priors.tasks)} task{plural}: credit for {len(credited)} of "
        f"{len(known)} operators, preferred values for {fields} field{'s' if fields != 1 else ''}"
    )
