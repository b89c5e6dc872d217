"""Several models, one program: a :class:`Panel` scores every candidate on each model, and the
search selects on their scores combined ``across`` the models (mean or min).

A candidate's scores hold the combined score under each objective's own name (what the search
selects on, so every strategy, Pareto front and report works unchanged) and each model's score
under ``objective@model`` (:func:`model_key`), so that reports can show a column per model.

* ``mean``: the mean of the models' values; per row, the mean of the models' row scores (so a
  paired comparison of two candidates stays paired, row by row), with its interval;
* ``min``: the worst model's score, whole (its rows and interval): a prompt is as good as it is
  on the model it suits least. For an objective to minimise, the worst is the largest.

>>> from sammo_core.objectives import Accuracy, Score
>>> a = {"accuracy": Score("accuracy", 0.75, per_item=(1.0, 1.0, 1.0, 0.0), n=4)}
>>> b = {"accuracy": Score("accuracy", 0.25, per_item=(0.0, 1.0, 0.0, 0.0), n=4)}
>>> mean = combine({"big": a, "small": b}, [Accuracy()], "mean")
>>> mean["accuracy"].value, mean["accuracy"].per_item, mean["accuracy@small"].value
(0.5, (0.5, 1.0, 0.5, 0.0), 0.25)
>>> combine({"big": a, "small": b}, [Accuracy()], "min")["accuracy"].value
0.25
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal, get_args

from sammo_core.components import GenerateText, Output
from sammo_core.errors import ConfigError
from sammo_core.objectives import Objective, OnModel, Score, unwrapped
from sammo_core.runners.accounting import (
    AccountingRunner,
    Ledger,
    accounted,
)
from sammo_core.runners.base import Runner
from sammo_core.runners.call_settings import CallSettings, call_settings_for
from sammo_core.stats import mean_interval

__all__ = [
    "ACROSS",
    "Across",
    "Panel",
    "check_objective_models",
    "check_one_model",
    "combine",
    "counted",
    "counted_panel",
    "model_key",
    "panel_of",
    "scored_on_each",
]

Across = Literal["mean", "min"]
#: The ways a panel's scores are combined.
ACROSS: tuple[str, ...] = get_args(Across)


def model_key(objective: str, model: str) -> str:
    """The key of one model's score among a candidate's scores: ``objective@model``.

    >>> model_key("label_accuracy", "local:gemma3")
    'label_accuracy@local:gemma3'
    """
    return f"{objective}@{model}"


@dataclasses.dataclass(frozen=True)
class Panel:
    """The models (name -> runner, in order) that score every candidate, and how their scores
    combine. Pass one as a search's ``runner``.

    >>> from sammo_core.runners import ScriptedRunner
    >>> Panel({"a": ScriptedRunner(default="x")}, across="max")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: across must be one of mean, min; got 'max'
    """

    runners: Mapping[str, Runner]
    across: Across = "mean"

    def __post_init__(self) -> None:
        if not self.runners:
            raise ConfigError("a Panel needs at least one model; e.g. Panel({'local': runner})")
        if self.across not in ACROSS:
            raise ConfigError(f"across must be one of {', '.join(ACROSS)}; got {self.across!r}")
        for name in self.runners:
            if not isinstance(name, str) or not name or "@" in name:
                raise ConfigError(f"panel model names must be text without '@'; got {name!r}")

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self.runners)

    @property
    def first(self) -> Runner:
        """The first model's runner (what proposals default to)."""
        return next(iter(self.runners.values()))


def _mean_score(name: str, scores: Sequence[Score], seed: int = 0) -> Score:
    value = math.fsum(s.value for s in scores) / len(scores)
    items = [s.per_item for s in scores]
    if any(i is None for i in items) or len({len(i or ()) for i in items}) != 1:
        return Score(name, value, n=scores[0].n)
    rows = tuple(math.fsum(col) / len(col) for col in zip(*items, strict=True))
    low, high = mean_interval(rows, seed=seed) if rows else (None, None)
    return Score(name, value, low, high, rows, scores[0].n)


def combine(
    per_model: Mapping[str, Mapping[str, Score]], objectives: Sequence[Objective], across: Across
) -> dict[str, Score]:
    """Each objective's combined score under its name, and each model's under
    :func:`model_key` (see the module docstring)."""
    combined: dict[str, Score] = {}
    for objective in objectives:
        name = objective.name
        scores = [per_model[m][name] for m in per_model]
        if across == "mean":
            combined[name] = _mean_score(name, scores)
        else:
            pick = min if objective.direction == "maximize" else max
            combined[name] = pick(scores, key=lambda s: s.value)
    for model, own in per_model.items():
        for name, score in own.items():
            combined[model_key(name, model)] = dataclasses.replace(
                score, name=model_key(name, model)
            )
    return combined


def scored_on_each(objectives: Sequence[Objective], panel: Panel | None) -> list[Objective]:
    """The objectives each model's results are scored on: ``objectives``, each
    :class:`~sammo_core.objectives.OnModel` (``NAME@MODEL``) replaced by the objective it reads,
    once. :func:`combine` then stores every model's score under ``NAME@MODEL``, which is where
    the search reads an ``OnModel``. A model that is not in ``panel``: ConfigError.

    >>> from sammo_core.objectives import parse_objectives
    >>> from sammo_core.runners import ScriptedRunner
    >>> panel = Panel({"a": ScriptedRunner(), "b": ScriptedRunner()})
    >>> [o.name for o in scored_on_each(parse_objectives("accuracy@a,accuracy@b"), panel)]
    ['accuracy']
    >>> scored_on_each(parse_objectives("accuracy@c"), panel)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: objective 'accuracy@c' names model 'c', which is not among ...
    """
    check_objective_models(objectives, () if panel is None else panel.models)
    scored: dict[str, Objective] = {}
    for objective in objectives:
        scored.setdefault(unwrapped(objective).name, unwrapped(objective))
    return list(scored.values())


def check_objective_models(objectives: Sequence[Objective], models: Sequence[str]) -> None:
    """Refuse an objective ``NAME@MODEL`` whose model is not one of ``models`` (the run's
    models, when there are several; none when there is one), naming the fix.

    >>> from sammo_core.objectives import parse_objectives
    >>> check_objective_models(parse_objectives("accuracy@a"), ["a"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: objective 'accuracy@a' is one model's score in a search ...
    """
    for objective in objectives:
        if not isinstance(objective, OnModel):
            continue
        if len(models) < 2:
            raise ConfigError(
                f"objective {objective.name!r} is one model's score in a search over several "
                f"models; give --model more than once, or drop '@{objective.model}'"
            )
        if objective.model not in models:
            raise ConfigError(
                f"objective {objective.name!r} names model {objective.model!r}, which is not "
                f"among this run's models ({', '.join(models)}); name one of them after '@'"
            )


def counted_panel(panel: Panel, ledger: Ledger) -> tuple[Panel, dict[str, AccountingRunner]]:
    """``panel`` with every model's calls counted and limited on ``ledger`` (one budget over
    all the models), and each model's own tally (``tally.usage``: what that model spent).

    A model's runner that is an accounting runner without a budget (a CLI's stack) is counted
    below its accounting layer, as :func:`~sammo_core.runners.accounting.accounted` does.

    >>> import asyncio
    >>> from sammo_core.runners import LLMRequest, ScriptedRunner
    >>> panel = Panel({"a": ScriptedRunner(default="x"), "b": ScriptedRunner(default="y")})
    >>> ledger = Ledger()
    >>> counted, tallies = counted_panel(panel, ledger)
    >>> _ = asyncio.run(counted.runners["b"].generate(LLMRequest.from_prompt("Hi")))
    >>> ledger.usage.calls, tallies["a"].usage.calls, tallies["b"].usage.calls
    (1, 0, 1)
    """
    tallies: dict[str, AccountingRunner] = {}
    counted: dict[str, Runner] = {}
    for model, given in panel.runners.items():
        bare = (
            given.inner if isinstance(given, AccountingRunner) and given.budget is None else given
        )
        tallies[model] = AccountingRunner(bare)
        counted[model] = AccountingRunner(tallies[model], ledger=ledger)
    return Panel(counted, panel.across), tallies


def panel_of(
    runners: Mapping[str, Runner],
    program: Output,
    across: Across = "mean",
    *,
    base_models: Collection[str] = (),
) -> tuple[Panel, dict[str, dict[str, Any]]]:
    """A panel of ``runners`` for ``program``, each model with the call settings it needs
    (:func:`~sammo_core.runners.call_settings.call_settings_for`: a model of ``base_models``
    gets a chat program in completion mode), and every model's settings as they are recorded
    beside the program (``run.json``, export manifests).

    >>> from sammo_core import MetaPrompt
    >>> from sammo_core.runners import ScriptedRunner
    >>> program = Output(GenerateText(MetaPrompt(["Say yes."])))
    >>> panel, settings = panel_of({"chat": ScriptedRunner(), "base": ScriptedRunner()},
    ...                            program, base_models={"base"})
    >>> settings
    {'chat': {'mode': 'chat', 'stop': []}, 'base': {'mode': 'completion', 'stop': ['\\n']}}
    >>> type(panel.runners["base"]).__name__
    'CallSettings'
    """
    call = program.child
    mode = call.mode if isinstance(call, GenerateText) else "chat"
    stop = tuple(call.stop) if isinstance(call, GenerateText) else ()
    members: dict[str, Runner] = {}
    settings: dict[str, dict[str, Any]] = {}
    for model, given in runners.items():
        needs = call_settings_for(model in base_models, mode, stop)
        if needs is None:
            members[model] = given
            settings[model] = {"mode": mode, "stop": list(stop)}
            continue
        bare = (
            given.inner if isinstance(given, AccountingRunner) and given.budget is None else given
        )
        members[model] = CallSettings(bare, mode=needs["mode"], stop=needs["stop"])
        settings[model] = needs
    return Panel(members, across), settings


def counted(runner: Runner | Panel, ledger: Ledger) -> Runner | Panel:
    """``runner``, or each model of a panel, counted on ``ledger`` (what a test report
    spends; see :func:`~sammo_core.runners.accounting.accounted`)."""
    if isinstance(runner, Panel):
        return counted_panel(runner, ledger)[0]
    return accounted(runner, ledger)


def check_one_model(racing: str, models: int) -> None:
    """Racing scores candidates on a few rows of one model: refuse it with several.

    >>> check_one_model("halving", 2)
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: --racing halving scores candidates on a few rows of one \
model; with 2 models use --racing off
    """
    if racing != "off" and models > 1:
        raise ConfigError(
            f"--racing {racing} scores candidates on a few rows of one model; with {models} "
            "models use --racing off"
        )
