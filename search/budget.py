"""Search budgets: candidates evaluated, and the limits on what the calls spend (calls,
tokens, dollars: a :class:`~sammo_core.runners.accounting.CallBudget`, which the runners' ledger
enforces)."""

from __future__ import annotations

import dataclasses

from sammo_core.errors import ConfigError
from sammo_core.runners.accounting import CallBudget

__all__ = ["SearchBudget"]


@dataclasses.dataclass(frozen=True)
class SearchBudget:
    """Upper limits for a search; ``None`` means no limit, but at least one must be set.

    Calls, tokens and dollars cover the task model and the proposer together. Calls count
    every call the search makes, answered by a cache or not (a candidate found equal to one
    already scored makes none), so a search does the same work on a warm cache as on a cold
    one; tokens and dollars count what was paid (cache hits pay nothing). The final test
    report of the best program(s) is accounted separately and not charged to this budget.

    >>> SearchBudget(candidates=20, calls=2000)
    SearchBudget(candidates=20, calls=2000, tokens=None, usd=None)
    >>> SearchBudget()
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: a search needs a budget: set candidates, calls, tokens or usd
    """

    candidates: int | None = None
    calls: int | None = None
    tokens: int | None = None
    usd: float | None = None

    def __post_init__(self) -> None:
        if all(v is None for v in dataclasses.astuple(self)):
            raise ConfigError("a search needs a budget: set candidates, calls, tokens or usd")
        if self.candidates is not None and self.candidates < 1:
            raise ConfigError(f"candidates budget must be >= 1; got {self.candidates}")
        # CallBudget validates calls, tokens and usd.
        self.runner_budget()

    def runner_budget(self) -> CallBudget | None:
        """The part a runner's ledger enforces."""
        if self.calls is None and self.tokens is None and self.usd is None:
            return None
        return CallBudget(calls=self.calls, tokens=self.tokens, usd=self.usd)

    @classmethod
    def parse(cls, text: str) -> SearchBudget:
        """Read ``"40"`` (candidates) or ``"candidates=40,calls=2000,usd=1.5"``."""
        text = text.strip()
        if text.isdigit():
            return cls(candidates=int(text))
        values: dict[str, float] = {}
        for part in text.split(","):
            key, sep, raw = part.partition("=")
            key = key.strip()
            if not sep or key not in ("candidates", "calls", "tokens", "usd"):
                raise ConfigError(
                    f"cannot read budget {text!r}: write a number of candidates, or "
                    "key=value pairs among candidates, calls, tokens, usd"
                )
            try:
                values[key] = float(raw) if key == "usd" else int(raw)
            except ValueError as exc:
                raise ConfigError(f"budget {key}={raw!r} is not a number") from exc
        return cls(**values)  # type: ignore[arg-type]
