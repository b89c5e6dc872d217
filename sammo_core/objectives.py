"""Objectives: scores over a result table, quality with 95% intervals and cost totals.

Quality objectives (:class:`Accuracy`, :class:`LabelAccuracy`, :class:`F1`,
:class:`FunctionObjective`, and on scored answers :class:`LabelLogLikelihood` and
:class:`BrierScore`) score each row, average the items and attach an interval
(:func:`mean_interval`): a Wilson interval when every item is 0 or 1 (the score is a share
of rows, say an accuracy), else a seeded percentile bootstrap. Cost objectives
(:class:`Calls`, :class:`PromptTokens`, ...) read what the *program* costs on the table (its
calls, tokens and dollars, cache hits included, since a hit stands for the call it answers),
so a search scores the same live, on a warm cache and in replay. What a run *spent* (zero
for hits) is for budgets and usage reports, not objectives. The totals already add up
minibatched rows' fractional shares.

>>> from sammo_core.results import ResultRow, ResultTable
>>> rows = [ResultRow(i, "q", gold, "p", pred, pred) for i, (gold, pred) in
...         enumerate([("yes", "Yes."), ("no", "yes"), ("no", " NO")])]
>>> scores = evaluate(ResultTable(tuple(rows)), [Accuracy(), Calls()])
>>> print(scores["accuracy"])
accuracy 0.667 [0.208, 0.939] (n=3)
>>> print(scores["calls"])
calls 3 (n=3)
"""

from __future__ import annotations

import abc
import dataclasses
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Literal

import orjson

from sammo_core.errors import ConfigError, DataError
from sammo_core.registry import Registry
from sammo_core.results import ResultRow, ResultTable
from sammo_core.stats import binomial, bootstrap_ci, mean_interval, paired_difference

__all__ = [
    "F1",
    "OBJECTIVES",
    "UNSCORED_PROBABILITY",
    "Accuracy",
    "BrierScore",
    "Calls",
    "CompletionTokens",
    "CostUSD",
    "Direction",
    "FunctionObjective",
    "LabelAccuracy",
    "LabelLogLikelihood",
    "MeanPromptTokens",
    "Normalizer",
    "Objective",
    "OnModel",
    "PromptTokens",
    "Score",
    "TotalTokens",
    "binomial",
    "bootstrap_ci",
    "evaluate",
    "get_objective",
    "mean_interval",
    "paired_difference",
    "parse_objectives",
    "reply_counts",
    "unwrapped",
]

Direction = Literal["maximize", "minimize"]

_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"\w+")
_ARTICLES = frozenset({"a", "an", "the"})


@dataclasses.dataclass(frozen=True)
class Normalizer:
    """Turns a prediction or gold output into a comparable string.

    Steps, each switchable, in this order: collapse runs of whitespace to one space, strip the
    ends, drop trailing periods (with ``strip``, also the spaces between them), casefold.
    ``None`` becomes ``""``; other non-strings become compact JSON with sorted keys (``str()``
    if not JSON-serializable).

    >>> Normalizer()("  The   Answer. ")
    'the answer'
    >>> Normalizer(casefold=False)("Yes.")
    'Yes'
    >>> Normalizer()(None), Normalizer()(42), Normalizer()({"a": [1]})
    ('', '42', '{"a":[1]}')
    """

    strip: bool = True
    casefold: bool = True
    collapse_spaces: bool = True
    drop_trailing_period: bool = True

    def __call__(self, value: Any) -> str:
        if isinstance(value, str) and value.isalnum():  # one word: no space or period to touch
            return value.casefold() if self.casefold else value
        if value is None:
            text = ""
        elif isinstance(value, str):
            text = value
        else:
            try:
                text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")
            except TypeError:
                text = str(value)
        if self.collapse_spaces:
            text = _SPACES.sub(" ", text)
        if self.strip:
            text = text.strip()
        if self.drop_trailing_period:
            # With strip on, "yes. ." loses all its trailing dots and spaces at once, so a
            # normalized string normalizes to itself.
            text = text.rstrip(".")
            while self.strip and text != text.rstrip():
                text = text.rstrip().rstrip(".")
        if self.casefold:
            text = text.casefold()
        return text


@dataclasses.dataclass(frozen=True)
class Score:
    """An objective's value on a result table, with its interval when it has one.

    A mean objective's interval is a Wilson interval when every item is 0 or 1 (four right
    answers out of four give ``[0.510, 1.000]``, not the certainty of a bootstrap's
    ``[1.000, 1.000]``), else a percentile bootstrap (:func:`mean_interval`).

    >>> print(Score("accuracy", 0.74, 0.65, 0.82, None, 100))
    accuracy 0.740 [0.650, 0.820] (n=100)
    >>> print(Score("calls", 12.0, n=4))
    calls 12 (n=4)
    """

    name: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    per_item: tuple[float, ...] | None = None
    n: int = 0

    def __str__(self) -> str:
        if self.ci_low is not None and self.ci_high is not None:
            interval = f" [{self.ci_low:.3f}, {self.ci_high:.3f}]"
            return f"{self.name} {self.value:.3f}{interval} (n={self.n})"
        return f"{self.name} {_format_number(self.value)} (n={self.n})"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields (``per_item`` as a list).

        >>> Score("f1", 0.5, n=2, per_item=(0.0, 1.0)).to_dict()["per_item"]
        [0.0, 1.0]
        """
        return {
            "name": self.name,
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "per_item": None if self.per_item is None else list(self.per_item),
            "n": self.n,
        }


def _format_number(value: float) -> str:
    if math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    if abs(value) >= 0.001:
        return f"{value:.3f}"
    return f"{value:.3g}"


class Objective(abc.ABC):
    """Scores a :class:`~sammo_core.results.ResultTable`; ``direction`` says which way is better.

    Subclasses implement :meth:`score`.

    >>> class Longest(Objective):
    ...     name, direction = "longest", "maximize"
    ...     def score(self, results):
    ...         return Score(self.name, max(len(r.raw_output) for r in results), n=len(results))
    >>> Longest().direction
    'maximize'
    """

    name: str
    direction: Direction
    #: Whether :meth:`score` gives per-row values (``Score.per_item``), which racing and
    #: paired comparisons need: ``True``, ``False`` (a total, such as ``calls``), or ``None``
    #: when a subclass does not say (known only once it has scored).
    per_row: ClassVar[bool | None] = None

    @abc.abstractmethod
    def score(self, results: ResultTable) -> Score:
        """Score ``results``."""


@dataclasses.dataclass(frozen=True)
class _MeanObjective(Objective):
    """Scores each row, then reports the mean with its interval (:meth:`interval`)."""

    per_row: ClassVar[bool | None] = True

    ci_level: float = dataclasses.field(default=0.95, kw_only=True)
    n_resamples: int = dataclasses.field(default=1000, kw_only=True)
    seed: int = dataclasses.field(default=0, kw_only=True)

    @abc.abstractmethod
    def score_row(self, row: ResultRow) -> float:
        """One row's score."""

    def interval(self, per_item: Sequence[float]) -> tuple[float, float]:
        """The interval of the mean: Wilson's for 0/1 items (a share of rows), else the
        bootstrap's (:func:`mean_interval`)."""
        return mean_interval(per_item, self.ci_level, self.n_resamples, self.seed)

    def score(self, results: ResultTable) -> Score:
        if len(results) == 0:
            raise DataError(f"{self.name} needs at least one row; the result table is empty")
        per_item = tuple(self.score_row(row) for row in results)
        low, high = self.interval(per_item)
        value = math.fsum(per_item) / len(per_item)
        return Score(self.name, value, low, high, per_item, len(per_item))


def _gold(row: ResultRow, name: str) -> Any:
    if row.output is None:
        raise ConfigError(
            f"{name} needs gold outputs; row {row.index} has none "
            "(load data with an output field, or use a cost objective)"
        )
    return row.output


@dataclasses.dataclass(frozen=True)
class Accuracy(_MeanObjective):
    """Share of rows whose normalized prediction equals the normalized gold output.

    A missing prediction (``None``) is wrong; a row without a gold output raises
    :class:`ConfigError`.

    >>> from sammo_core.results import ResultRow
    >>> Accuracy().score_row(ResultRow(0, "q", "Paris", "p", "paris.", "paris."))
    1.0
    """

    normalizer: Normalizer = Normalizer()
    name: str = dataclasses.field(default="accuracy", kw_only=True)
    direction: Direction = dataclasses.field(default="maximize", init=False)

    def score_row(self, row: ResultRow) -> float:
        gold = _gold(row, self.name)
        if row.prediction is None:
            return 0.0
        return float(self.normalizer(row.prediction) == self.normalizer(gold))


# What a reply may carry around a label and still be that label: surrounding quotes, backticks
# and markdown emphasis, and trailing punctuation.
_LABEL_TRIM = re.compile(r"^[\s\"'`*_]+|[\s\"'`*_.,;:!?]+$")


@dataclasses.dataclass(frozen=True)
class LabelAccuracy(_MeanObjective):
    """Share of rows whose prediction *is* one of a fixed set of labels and equals the gold one.

    The rule is strict: a prediction is a label only when, after normalizing both sides, the
    two are equal. Normalizing is the ``normalizer`` (by default: collapse whitespace, strip,
    drop trailing periods, casefold), then dropping surrounding quotes, backticks, ``*`` and
    ``_`` and trailing ``. , ; : ! ?``. Any other text is *off-label* and scores 0, however
    much it contains a label: ``"yes AAAA"``, ``"No, because ..."`` and ``"Sentiment: no"`` are
    all wrong. (Parse the reply first, e.g. ``Output(..., parser="first_line")``.)

    >>> objective = LabelAccuracy(("yes", "no"))
    >>> objective.map_label(" **No!** "), objective.map_label("'yes'."), objective.map_label("YES")
    ('no', 'yes', 'yes')
    >>> objective.map_label("yes AAAA"), objective.map_label("No, because the sky is blue.")
    (None, None)
    """

    labels: tuple[str, ...]
    normalizer: Normalizer = Normalizer()
    name: str = dataclasses.field(default="label_accuracy", kw_only=True)
    direction: Direction = dataclasses.field(default="maximize", init=False)

    def __post_init__(self) -> None:
        labels = (self.labels,) if isinstance(self.labels, str) else tuple(self.labels)
        if not labels or any(not isinstance(label, str) for label in labels):
            raise ConfigError(f"labels must be a non-empty sequence of strings; got {labels!r}")
        object.__setattr__(self, "labels", labels)

    def label_key(self, value: Any) -> str:
        """``value`` normalized for comparison with a label (see the class docstring).

        >>> LabelAccuracy(("positive", "negative")).label_key(' "Negative". ')
        'negative'
        """
        return _LABEL_TRIM.sub("", self.normalizer(value))

    def map_label(self, prediction: Any) -> str | None:
        """The label ``prediction`` is, or ``None`` (missing, or off-label).

        >>> LabelAccuracy(("positive", "negative")).map_label("Sentiment: NEGATIVE") is None
        True
        """
        if prediction is None:
            return None
        key = self.label_key(prediction)
        for label in self.labels:
            if key == self.label_key(label):
                return label
        return None

    def majority(self, outputs: Sequence[Any]) -> tuple[str, float] | None:
        """The commonest gold label of ``outputs`` (as :attr:`labels` spell it) and the share of
        ``outputs`` it is: the accuracy of always answering it, the bar a classifier must
        clear; ``None`` without a gold output.

        >>> LabelAccuracy(("yes", "no")).majority(["no", "Yes", "no."])
        ('no', 0.6666666666666666)
        """
        counts = Counter(self.label_key(o) for o in outputs if o is not None)
        if not counts:
            return None
        key, count = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
        label = next((x for x in self.labels if self.label_key(x) == key), key)
        return label, count / len(outputs)

    def score_row(self, row: ResultRow) -> float:
        gold = _gold(row, self.name)
        label = self.map_label(row.prediction)
        return float(label is not None and self.label_key(label) == self.label_key(gold))


#: The probability an unscored row (it failed, or the runner generated), or a row whose gold
#: output is none of the labels, gives its gold label under the probability objectives: as good
#: as a confident wrong answer.
UNSCORED_PROBABILITY = 1e-6


@dataclasses.dataclass(frozen=True)
class _ProbabilityObjective(_MeanObjective):
    """Scores each row from the program's label distribution (``ResultRow.label_logprobs``,
    filled when a runner scored the call's labels)."""

    normalizer: Normalizer = Normalizer()

    def interval(self, per_item: Sequence[float]) -> tuple[float, float]:
        # A log-probability or a Brier score is no share of rows, even when every item
        # happens to be 0 or 1 (all certain and right): always the bootstrap's.
        return bootstrap_ci(per_item, self.ci_level, self.n_resamples, self.seed)

    def score(self, results: ResultTable) -> Score:
        if len(results) and not any(r.label_logprobs is not None for r in results):
            raise ConfigError(
                f"{self.name} needs scored answers (each label's probability), but no row has "
                "them: list the labels (GenerateText(labels=[...]); on the command line "
                "--labels yes,no) and use a runner that scores them (local, local:gemma3, "
                "hf:..., a completions server with log-probabilities)"
            )
        return super().score(results)

    def gold_probability(self, row: ResultRow) -> tuple[float, dict[str, float] | None]:
        """The program's probability of the gold label, and the whole distribution."""
        gold = self.normalizer(_gold(row, self.name))
        if row.label_logprobs is None:
            return UNSCORED_PROBABILITY, None
        probabilities = {k: math.exp(v) for k, v in row.label_logprobs.items()}
        for label, p in probabilities.items():
            if self.normalizer(label) == gold:
                return max(p, UNSCORED_PROBABILITY), probabilities
        # A gold output that is none of the labels: no label could be right.
        return UNSCORED_PROBABILITY, probabilities


@dataclasses.dataclass(frozen=True)
class LabelLogLikelihood(_ProbabilityObjective):
    """Mean log-probability the program gives the gold label (higher is better; 0 is certain).

    A smooth objective: it moves with every row's confidence, where accuracy moves only when
    an answer flips. An unscored row counts as probability :data:`UNSCORED_PROBABILITY`.

    >>> from sammo_core.results import ResultRow
    >>> row = ResultRow(0, "q", "yes", "p", "yes", "yes", label_logprobs={"yes": -0.2, "no": -1.7})
    >>> round(LabelLogLikelihood().score_row(row), 3)
    -0.2
    """

    name: str = dataclasses.field(default="label_loglik", kw_only=True)
    direction: Direction = dataclasses.field(default="maximize", init=False)

    def score_row(self, row: ResultRow) -> float:
        return math.log(self.gold_probability(row)[0])


@dataclasses.dataclass(frozen=True)
class BrierScore(_ProbabilityObjective):
    """Mean Brier score: the squared distance between the label distribution and the gold
    one-hot vector, summed over labels (lower is better; 0 is certain and right, 2 the worst).

    An unscored row scores 2.

    >>> from sammo_core.results import ResultRow
    >>> row = ResultRow(0, "q", "yes", "p", "yes", "yes", label_logprobs={"yes": -0.2, "no": -1.7})
    >>> round(BrierScore().score_row(row), 3)
    0.066
    """

    name: str = dataclasses.field(default="brier", kw_only=True)
    direction: Direction = dataclasses.field(default="minimize", init=False)

    def score_row(self, row: ResultRow) -> float:
        _, probabilities = self.gold_probability(row)
        if probabilities is None:
            return 2.0
        gold = self.normalizer(row.output)
        # The gold one-hot vector has its 1 on the gold label, if it is one of the labels.
        return math.fsum(
            (p - (1.0 if self.normalizer(label) == gold else 0.0)) ** 2
            for label, p in probabilities.items()
        ) + (0.0 if any(self.normalizer(k) == gold for k in probabilities) else 1.0)


def _tokens(text: str, drop_articles: bool) -> list[str]:
    words = _WORD.findall(text)
    return [w for w in words if w not in _ARTICLES] if drop_articles else words


@dataclasses.dataclass(frozen=True)
class F1(_MeanObjective):
    """SQuAD-style token F1 between prediction and gold output, averaged over rows.

    Tokens are the word characters runs of the normalized text (punctuation dropped), without
    the articles a/an/the unless ``drop_articles=False``. Two empty token lists score 1.0.

    >>> F1().token_f1("the cat sat", "Cat sat down.")
    0.8
    """

    normalizer: Normalizer = Normalizer()
    drop_articles: bool = True
    name: str = dataclasses.field(default="f1", kw_only=True)
    direction: Direction = dataclasses.field(default="maximize", init=False)

    def token_f1(self, prediction: Any, gold: Any) -> float:
        """Token F1 of one prediction against one gold output.

        >>> F1().token_f1("a b", "c")
        0.0
        """
        pred = _tokens(self.normalizer(prediction), self.drop_articles)
        ref = _tokens(self.normalizer(gold), self.drop_articles)
        if not pred or not ref:
            return float(pred == ref)
        same = sum((Counter(pred) & Counter(ref)).values())
        if same == 0:
            return 0.0
        precision, recall = same / len(pred), same / len(ref)
        return 2 * precision * recall / (precision + recall)

    def score_row(self, row: ResultRow) -> float:
        return self.token_f1(row.prediction, _gold(row, self.name))


@dataclasses.dataclass(frozen=True)
class FunctionObjective(_MeanObjective):
    """Averages ``fn(prediction, gold_output)`` over rows, with an interval (Wilson's when
    every row scores 0 or 1, else a bootstrap).

    >>> from sammo_core.results import ResultRow
    >>> length = FunctionObjective(lambda pred, gold: len(pred or ""), "length", "minimize")
    >>> length.score_row(ResultRow(0, "q", None, "p", "four", "four"))
    4.0
    """

    fn: Callable[[Any, Any], float]
    name: str
    direction: Direction = "maximize"

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise ConfigError(f"FunctionObjective needs a callable; got {self.fn!r}")
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"FunctionObjective needs a non-empty name; got {self.name!r}")
        if self.direction not in ("maximize", "minimize"):
            raise ConfigError(f"direction must be 'maximize' or 'minimize'; got {self.direction!r}")

    def score_row(self, row: ResultRow) -> float:
        value = self.fn(row.prediction, row.output)
        if isinstance(value, bool | int | float):
            return float(value)
        raise ConfigError(
            f"objective {self.name!r} returned {value!r} for row {row.index}; "
            "its function must return a number"
        )


@dataclasses.dataclass(frozen=True)
class _CostObjective(Objective):
    direction: Direction = dataclasses.field(default="minimize", init=False)
    per_row: ClassVar[bool | None] = False

    @abc.abstractmethod
    def total(self, results: ResultTable) -> float:
        """The total over ``results``."""

    def score(self, results: ResultTable) -> Score:
        return Score(self.name, float(self.total(results)), n=len(results))


@dataclasses.dataclass(frozen=True)
class Calls(_CostObjective):
    """LLM calls the program makes, cache hits included (a minibatched call counts once).

    >>> from sammo_core.results import ResultRow, ResultTable
    >>> rows = [ResultRow(i, "q", None, "p", "a", "a", calls=0.5) for i in range(4)]
    >>> Calls().score(ResultTable(tuple(rows))).value
    2.0
    """

    name: str = dataclasses.field(default="calls", init=False)

    def total(self, results: ResultTable) -> float:
        return results.calls


@dataclasses.dataclass(frozen=True)
class PromptTokens(_CostObjective):
    """Prompt tokens the program sends, in total (cache hits included).

    >>> from sammo_core.results import ResultRow, ResultTable
    >>> row = ResultRow(0, "q", None, "p", "a", "a", prompt_tokens=12)
    >>> PromptTokens().score(ResultTable((row,))).value
    12.0
    """

    name: str = dataclasses.field(default="prompt_tokens", init=False)

    def total(self, results: ResultTable) -> float:
        return results.prompt_tokens


@dataclasses.dataclass(frozen=True)
class CompletionTokens(_CostObjective):
    """Completion tokens the program receives, in total (cache hits included).

    >>> from sammo_core.results import ResultRow, ResultTable
    >>> row = ResultRow(0, "q", None, "p", "a", "a", completion_tokens=3)
    >>> CompletionTokens().score(ResultTable((row,))).value
    3.0
    """

    name: str = dataclasses.field(default="completion_tokens", init=False)

    def total(self, results: ResultTable) -> float:
        return results.completion_tokens


@dataclasses.dataclass(frozen=True)
class TotalTokens(_CostObjective):
    """Prompt plus completion tokens of the program (cache hits included).

    >>> from sammo_core.results import ResultRow, ResultTable
    >>> row = ResultRow(0, "q", None, "p", "a", "a", prompt_tokens=12, completion_tokens=3)
    >>> TotalTokens().score(ResultTable((row,))).value
    15.0
    """

    name: str = dataclasses.field(default="total_tokens", init=False)

    def total(self, results: ResultTable) -> float:
        return results.prompt_tokens + results.completion_tokens


@dataclasses.dataclass(frozen=True)
class CostUSD(_CostObjective):
    """The program's price in dollars, in total (cache hits included; 0 for unpriced models).

    >>> from sammo_core.results import ResultRow, ResultTable
    >>> row = ResultRow(0, "q", None, "p", "a", "a", cost_usd=0.25)
    >>> print(CostUSD().score(ResultTable((row,))))
    cost_usd 0.250 (n=1)
    """

    name: str = dataclasses.field(default="cost_usd", init=False)

    def total(self, results: ResultTable) -> float:
        return results.cost_usd


@dataclasses.dataclass(frozen=True)
class MeanPromptTokens(Objective):
    """Prompt tokens per row (each row's share of its call), with per-row values.

    A row answered from the cache counts the tokens of the call it stands for, so the score
    is the program's size, not what this run happened to pay.

    >>> from sammo_core.results import ResultRow, ResultTable
    >>> rows = [ResultRow(i, "q", None, "p", "a", "a", prompt_tokens=t, cached=i == 1)
    ...         for i, t in enumerate([10, 20])]
    >>> MeanPromptTokens().score(ResultTable(tuple(rows))).value
    15.0
    """

    per_row: ClassVar[bool | None] = True

    name: str = dataclasses.field(default="mean_prompt_tokens", init=False)
    direction: Direction = dataclasses.field(default="minimize", init=False)

    def score(self, results: ResultTable) -> Score:
        per_item = tuple(float(row.prompt_tokens) for row in results)
        value = math.fsum(per_item) / len(per_item) if per_item else 0.0
        return Score(self.name, value, per_item=per_item, n=len(per_item))


@dataclasses.dataclass(frozen=True)
class OnModel(Objective):
    """One model's score under ``inner``, in a search that scores every candidate on several
    models (``--model`` given more than once): named ``inner@model``, as the panel stores each
    model's score, so that a Pareto front can trade one model's score against another's
    (``--objective label_accuracy@local,label_accuracy@local:gemma3``).

    It is read from the panel's scores, never computed from one result table.

    >>> OnModel(Accuracy(), "local:gemma3").name
    'accuracy@local:gemma3'
    >>> get_objective("mean_prompt_tokens@local").direction
    'minimize'
    >>> OnModel(Accuracy(), "").name  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: objective 'accuracy@' names no model after '@'; e.g. ...
    """

    inner: Objective
    model: str
    name: str = dataclasses.field(init=False)
    direction: Direction = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        spelled = f"{self.inner.name}@{self.model}"
        if not self.model.strip() or "@" in self.model:
            raise ConfigError(
                f"objective {spelled!r} names no model after '@'; e.g. '{self.inner.name}@local'"
            )
        if isinstance(self.inner, OnModel):
            raise ConfigError(f"objective {spelled!r} names two models; name one per objective")
        object.__setattr__(self, "name", spelled)
        object.__setattr__(self, "direction", self.inner.direction)

    def score(self, results: ResultTable) -> Score:
        raise ConfigError(
            f"objective {self.name!r} is one model's score in a search over several models; "
            f"give --model more than once (one of them {self.model}), or drop '@{self.model}'"
        )


def unwrapped(objective: Objective) -> Objective:
    """The objective a result table is scored on: ``objective``, or the one an
    :class:`OnModel` reads on its model.

    >>> unwrapped(get_objective("label_accuracy:yes,no@local")).labels
    ('yes', 'no')
    """
    return objective.inner if isinstance(objective, OnModel) else objective


#: Objective name -> a factory of it (a class): the entry points of group
#: ``sammo_core.objectives``; the built-ins are the classes above, declared in pyproject.toml.
OBJECTIVES: Registry[Callable[[], Objective]] = Registry("sammo_core.objectives", "objective")
_LABELS_PREFIX = "label_accuracy"


def get_objective(name: str) -> Objective:
    """The objective a command-line name stands for.

    ``label_accuracy:yes,no`` builds :class:`LabelAccuracy` over the comma-separated labels;
    ``NAME@MODEL`` builds :class:`OnModel`, one model's score under ``NAME``.

    >>> get_objective("accuracy").direction, get_objective("cost").name
    ('maximize', 'cost_usd')
    >>> get_objective("label_accuracy:yes, no").labels
    ('yes', 'no')
    >>> get_objective("acc")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: unknown objective 'acc'; use one of: accuracy, brier, calls, ...
    """
    if name in OBJECTIVES:
        return OBJECTIVES[name]()
    if "@" in name:  # one model's score among several (a label may hold no '@' then)
        inner, _, model = name.rpartition("@")
        return OnModel(get_objective(inner.strip()), model.strip())
    head, _, tail = name.partition(":")
    if head == _LABELS_PREFIX:
        labels = tuple(label.strip() for label in tail.split(",") if label.strip())
        if not labels:
            raise ConfigError(
                f"objective {name!r} names no labels; write them after a colon, "
                "e.g. 'label_accuracy:yes,no'"
            )
        return LabelAccuracy(labels)
    valid = [*OBJECTIVES, "label_accuracy:LABEL,LABEL,..."]
    raise ConfigError(f"unknown objective {name!r}; use one of: {', '.join(valid)}")


def parse_objectives(text: str) -> list[Objective]:
    """A comma-separated list of objectives, primary first.

    Labels of ``label_accuracy`` are comma-separated too: a part that names no objective is a
    further label of the ``label_accuracy`` before it.

    >>> [o.name for o in parse_objectives("label_accuracy:yes,no,mean_prompt_tokens")]
    ['label_accuracy', 'mean_prompt_tokens']
    >>> parse_objectives("label_accuracy:yes,no")[0].labels
    ('yes', 'no')

    ``NAME@MODEL`` is one model's score in a search over several models (:class:`OnModel`):

    >>> [o.name for o in parse_objectives("label_accuracy:yes,no@local,accuracy@local:gemma3")]
    ['label_accuracy@local', 'accuracy@local:gemma3']
    """
    groups: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        head = part.rpartition("@")[0].strip() if "@" in part else part
        is_name = head in OBJECTIVES or head.partition(":")[0] == _LABELS_PREFIX
        if not is_name and groups and groups[-1].startswith(_LABELS_PREFIX + ":"):
            groups[-1] += "," + part
        else:
            groups.append(part)
    if not groups:
        raise ConfigError(f"no objective in {text!r}; e.g. 'accuracy' or 'accuracy,prompt_tokens'")
    return [get_objective(g) for g in groups]


def evaluate(results: ResultTable, objectives: Iterable[Objective]) -> dict[str, Score]:
    """Score ``results`` with each objective, keyed by objective name (in the given order).

    >>> from sammo_core.results import ResultRow, ResultTable
    >>> table = ResultTable((ResultRow(0, "q", "a", "p", "a", "a"),))
    >>> {name: s.value for name, s in evaluate(table, [Accuracy(), TotalTokens()]).items()}
    {'accuracy': 1.0, 'total_tokens': 0.0}
    """
    scores: dict[str, Score] = {}
    for objective in objectives:
        if objective.name in scores:
            raise ConfigError(
                f"two objectives are named {objective.name!r}; give one another name "
                "(e.g. Accuracy(name='strict_accuracy'))"
            )
        scores[objective.name] = objective.score(results)
    return scores


def reply_counts(
    results: ResultTable, objectives: Iterable[Objective] = ()
) -> dict[str, int | None]:
    """How many rows got no usable answer, by kind; each such row scores as wrong.

    - ``failed``: the call failed for good and the row was skipped (``--on-error skip``);
    - ``empty``: the model's reply was empty or whitespace (an API ``content: null`` too);
    - ``unparsable``: the reply had text but the output parser found no answer in it;
    - ``off_label``: a parsed answer that is none of the labels of the first
      :class:`LabelAccuracy` in ``objectives`` (``None`` when there is none).

    >>> from sammo_core.results import ResultRow, ResultTable
    >>> rows = [ResultRow(0, "q", "yes", "p", "yes", "yes"), ResultRow(1, "q", "no", "p", "", None),
    ...         ResultRow(2, "q", "no", "p", "yes AAAA", "yes AAAA")]
    >>> reply_counts(ResultTable(tuple(rows)), [LabelAccuracy(("yes", "no"))])
    {'failed': 0, 'empty': 1, 'unparsable': 0, 'off_label': 1}
    """
    labels = next((o for o in map(unwrapped, objectives) if isinstance(o, LabelAccuracy)), None)
    failed = empty = unparsable = off_label = 0
    for row in results:
        if row.error is not None:
            failed += 1
        elif not row.raw_output.strip():
            empty += 1
        elif row.prediction is None:
            unparsable += 1
        elif labels is not None and labels.map_label(row.prediction) is None:
            off_label += 1
    return {
        "failed": failed,
        "empty": empty,
        "unparsable": unparsable,
        "off_label": None if labels is None else off_label,
    }
