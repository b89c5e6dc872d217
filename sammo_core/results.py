"""The result table: what running a program on a data table produced, row by row.

Each row keeps the input, the gold output (if known), the exact prompt sent, the model's raw
text, the parsed prediction, and two kinds of cost that are never mixed:

- **what the program costs** for this input (``calls``, ``prompt_tokens``,
  ``completion_tokens``, ``cost_usd``): a property of the program and the model, the same
  whether the answer came from the model or from a cache. Objectives and fronts use these.
- **what this run spent** on it (``spent_calls``, ``spent_prompt_tokens``,
  ``spent_completion_tokens``, ``spent_usd``): zero for a cache hit. Budgets and usage
  reports use these.

When several inputs share one call (minibatching), the call's figures are split evenly across
its rows (``calls`` is fractional), so column sums always equal the true totals.

A row whose reply the model cut off at ``max_tokens`` (``finish_reason: "length"``) has
``cut_off`` set: its answer may be incomplete.

A row answered by scoring the labels (rank classification) also holds ``label_logprobs``: the
program's log-probability of each gold label, i.e. the model's label scores normalized over
the labels (and divided by the calibration prior when the program calibrates); the prediction
is the most likely of them. The table then holds the fitted ``label_prior``, if any.

>>> hit = ResultRow(0, "q", "a", "p", "a", "a", prompt_tokens=12, completion_tokens=1,
...                 cached=True)
>>> table = ResultTable((hit,))
>>> (table.prompt_tokens, table.spent_prompt_tokens, table.spent_calls)
(12, 0, 0)
>>> table.cost_per_input()
ProgramCost(calls=1.0, prompt_tokens=12.0, completion_tokens=1.0, usd=0.0)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

__all__ = ["ProgramCost", "ResultRow", "ResultTable"]


@dataclasses.dataclass(frozen=True, slots=True, init=False)
class ResultRow:
    """One input's outcome: the program's cost for it, and what this run spent on it."""

    index: int
    input: Any
    output: Any  # the gold output, or None when unknown
    prompt: str
    raw_output: str
    prediction: Any  # None when the answer for this input was missing or malformed
    calls: float = 1.0
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0
    cached: bool = False
    cost_usd: float = 0.0
    spent_calls: float = 0.0
    spent_prompt_tokens: float = 0.0
    spent_completion_tokens: float = 0.0
    spent_usd: float = 0.0
    error: str | None = None  # why the row failed for good (it was skipped); None if it ran
    # gold label -> the program's log-probability of it, when the answer was scored; else None
    label_logprobs: dict[str, float] | None = None
    cut_off: bool = False  # the model stopped at max_tokens: the reply may be incomplete
    # the token counts are estimates (the server reported none, or impossible ones)
    tokens_estimated: bool = False

    def __init__(  # noqa: PLR0917 - one argument per field, as dataclass would write it
        self,
        index: int,
        input: Any,
        output: Any,
        prompt: str,
        raw_output: str,
        prediction: Any,
        calls: float = 1.0,
        prompt_tokens: float = 0.0,
        completion_tokens: float = 0.0,
        cached: bool = False,
        cost_usd: float = 0.0,
        spent_calls: float = 0.0,
        spent_prompt_tokens: float = 0.0,
        spent_completion_tokens: float = 0.0,
        spent_usd: float = 0.0,
        error: str | None = None,
        label_logprobs: dict[str, float] | None = None,
        cut_off: bool = False,
        tokens_estimated: bool = False,
    ) -> None:
        # What dataclass writes for a frozen class, object.__setattr__(self, name, value) per
        # field, costs twice as much as setting the slots directly: a run builds one row per
        # input, so this is about 1.5 µs of its ~27 µs a row.
        s = _SLOT_SETTERS
        s[0](self, index)
        s[1](self, input)
        s[2](self, output)
        s[3](self, prompt)
        s[4](self, raw_output)
        s[5](self, prediction)
        s[6](self, calls)
        s[7](self, prompt_tokens)
        s[8](self, completion_tokens)
        s[9](self, cached)
        s[10](self, cost_usd)
        s[11](self, spent_calls)
        s[12](self, spent_prompt_tokens)
        s[13](self, spent_completion_tokens)
        s[14](self, spent_usd)
        s[15](self, error)
        s[16](self, label_logprobs)
        s[17](self, cut_off)
        s[18](self, tokens_estimated)

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready data; whole call and token counts are ints (``1``, not ``1.0``).

        >>> ResultRow(0, "q", "a", "p", "a", "a", calls=1.0, prompt_tokens=12.0).to_dict()["calls"]
        1
        """
        # The fields as they are (a dict made once per row for writing, not a deep copy as
        # dataclasses.asdict makes: a third of what writing 2,000 rows cost).
        data = {name: getter(self) for name, getter in _FIELD_GETTERS}
        for key in ("calls", "prompt_tokens", "completion_tokens"):
            if float(data[key]).is_integer():
                data[key] = int(data[key])
        return data


#: Each field's name and slot getter, in field order (see ResultRow.to_dict).
_FIELD_GETTERS: tuple[tuple[str, Callable[[ResultRow], Any]], ...] = tuple(
    (f.name, getattr(ResultRow, f.name).__get__) for f in dataclasses.fields(ResultRow)
)

#: Each field's slot setter, in field order (see ResultRow.__init__).
_SLOT_SETTERS: tuple[Callable[[ResultRow, Any], None], ...] = tuple(
    getattr(ResultRow, f.name).__set__ for f in dataclasses.fields(ResultRow)
)


@dataclasses.dataclass(frozen=True, slots=True)
class ProgramCost:
    """What a program costs per input, cache or not: calls, tokens sent and received, dollars.

    >>> ProgramCost(1.0, 40.0, 2.0).to_dict()
    {'calls': 1.0, 'prompt_tokens': 40.0, 'completion_tokens': 2.0, 'usd': 0.0}
    >>> ProgramCost.from_dict({"calls": 0.5, "prompt_tokens": 20})
    ProgramCost(calls=0.5, prompt_tokens=20.0, completion_tokens=0.0, usd=0.0)
    """

    calls: float = 0.0
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0
    usd: float = 0.0

    @property
    def total_tokens(self) -> float:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProgramCost:
        return cls(**{f.name: float(data.get(f.name, 0.0)) for f in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class ResultTable:
    """Rows in input order, plus totals.

    ``label_prior`` is the label distribution a calibrated program measured on content-free
    inputs and divided out of every row's scores (``None`` when it does not calibrate).
    """

    rows: tuple[ResultRow, ...]
    label_prior: dict[str, float] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[ResultRow]:
        return iter(self.rows)

    def __getitem__(self, index: int) -> ResultRow:
        return self.rows[index]

    @property
    def predictions(self) -> list[Any]:
        return [r.prediction for r in self.rows]

    @property
    def outputs(self) -> list[Any]:
        return [r.output for r in self.rows]

    @property
    def prompts(self) -> list[str]:
        return [r.prompt for r in self.rows]

    # -- what the program costs (the same with or without a cache) ---------------------------

    @property
    def calls(self) -> int:
        """Calls the program makes on these rows (cache hits included)."""
        return round(math.fsum(r.calls for r in self.rows))

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens the program sends on these rows (cache hits included)."""
        return round(math.fsum(r.prompt_tokens for r in self.rows))

    @property
    def completion_tokens(self) -> int:
        """Completion tokens the program receives on these rows (cache hits included)."""
        return round(math.fsum(r.completion_tokens for r in self.rows))

    @property
    def cost_usd(self) -> float:
        """The program's price on these rows (cache hits included; 0 for unpriced models)."""
        return math.fsum(r.cost_usd for r in self.rows)

    def cost_per_input(self) -> ProgramCost:
        """The program's mean cost per row (all zero for an empty table)."""
        n = len(self.rows)
        if n == 0:
            return ProgramCost()
        return ProgramCost(
            calls=math.fsum(r.calls for r in self.rows) / n,
            prompt_tokens=math.fsum(r.prompt_tokens for r in self.rows) / n,
            completion_tokens=math.fsum(r.completion_tokens for r in self.rows) / n,
            usd=self.cost_usd / n,
        )

    # -- what this run spent (zero for cache hits) --------------------------------------------

    @property
    def spent_calls(self) -> int:
        """Calls that reached the model (cache hits excluded)."""
        return round(math.fsum(r.spent_calls for r in self.rows))

    @property
    def spent_prompt_tokens(self) -> int:
        return round(math.fsum(r.spent_prompt_tokens for r in self.rows))

    @property
    def spent_completion_tokens(self) -> int:
        return round(math.fsum(r.spent_completion_tokens for r in self.rows))

    @property
    def spent_usd(self) -> float:
        return math.fsum(r.spent_usd for r in self.rows)

    def to_records(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.rows]

    @property
    def cut_off(self) -> int:
        """Rows whose reply the model cut off at ``max_tokens``."""
        return sum(r.cut_off for r in self.rows)

    @property
    def tokens_estimated(self) -> int:
        """Rows whose token counts (so their cost) are estimates: the server reported none."""
        return sum(r.tokens_estimated for r in self.rows)

    @property
    def scored(self) -> bool:
        """Whether every row that ran was answered by scoring its labels (and one did).

        >>> ResultTable((ResultRow(0, "q", "a", "p", "a", "a", label_logprobs={"a": -0.1}),)).scored
        True
        """
        ran = [r for r in self.rows if r.error is None]
        return bool(ran) and all(r.label_logprobs is not None for r in ran)

    @classmethod
    def from_rows(
        cls, rows: Sequence[ResultRow], label_prior: Mapping[str, float] | None = None
    ) -> ResultTable:
        prior = None if label_prior is None else dict(label_prior)
        return cls(rows=tuple(sorted(rows, key=lambda r: r.index)), label_prior=prior)
