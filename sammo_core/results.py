"""The result table: what running a program on a data table produced, row by row.

Each row keeps the input, the gold output (if known), the exact prompt sent, the model's raw
text, the parsed prediction and the row's share of the cost. When several inputs share one call
(minibatching), the call's tokens are split evenly across its rows and ``calls`` is fractional,
so column sums always equal the true totals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["ResultRow", "ResultTable"]


@dataclasses.dataclass(frozen=True, slots=True)
class ResultRow:
    """One input's outcome."""

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

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready data; whole call and token counts are ints (``1``, not ``1.0``).

        >>> ResultRow(0, "q", "a", "p", "a", "a", calls=1.0, prompt_tokens=12.0).to_dict()["calls"]
        1
        """
        data = dataclasses.asdict(self)
        for key in ("calls", "prompt_tokens", "completion_tokens"):
            if float(data[key]).is_integer():
                data[key] = int(data[key])
        return data


@dataclasses.dataclass(frozen=True)
class ResultTable:
    """Rows in input order, plus totals."""

    rows: tuple[ResultRow, ...]

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

    @property
    def calls(self) -> int:
        """Calls actually sent to the runner (cache hits included)."""
        return round(sum(r.calls for r in self.rows))

    @property
    def prompt_tokens(self) -> int:
        return round(sum(r.prompt_tokens for r in self.rows))

    @property
    def completion_tokens(self) -> int:
        return round(sum(r.completion_tokens for r in self.rows))

    @property
    def cost_usd(self) -> float:
        return sum(r.cost_usd for r in self.rows)

    def to_records(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.rows]

    @classmethod
    def from_rows(cls, rows: Sequence[ResultRow]) -> ResultTable:
        return cls(rows=tuple(sorted(rows, key=lambda r: r.index)))
