"""Racing: score a candidate on a few validation rows first, and on more only while it can win.

Every search strategy evaluates its candidates through the same racing rule (see
:meth:`search.base.SearchRun.evaluate`). Validation rows are taken in one seeded order; rung
``k`` holds the first ``sizes[k]`` of them, the last rung all. A candidate is scored rung by
rung, each rung adding only the rows it did not score yet (so no row is ever scored twice), and
after each rung it either goes on or stops there:

- ``off``: no rungs; every candidate is scored on the whole split (the search as it always was).
- ``paired``: it goes on while the paired interval of its per-row difference from the
  *incumbent* (the best candidate scored in full when its step began), on the rows scored so
  far, still reaches 0: it stops once it is worse with ``level`` confidence.
- ``halving``: asynchronous successive halving (ASHA, Li et al. 2018): it goes on while its
  score on the rung's rows ranks in the top ``keep`` share of the candidates that reached that
  rung before its step began (candidates scored in full count at every rung).

Decisions look only at candidates recorded before the step began, never at the step's other
children, so a step's outcome does not depend on which call answers first, and a search
resumed from a checkpoint decides exactly as one that never stopped. A candidate stopped early
keeps its scores on the rows it reached (``Candidate.rows``); it is never selected, kept in a
population, or reported as a winner.

>>> racing = Racing("halving", rungs=(8, 16))
>>> racing.sizes(40)
(8, 16, 40)
>>> Racing("paired").sizes(40)
(10, 20, 40)
>>> Racing().sizes(40)
(40,)
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import random
from collections.abc import Mapping, Sequence
from typing import Literal

from sammo_core.errors import ConfigError
from sammo_core.objectives import Objective, Score, bootstrap_ci

__all__ = [
    "MIN_RUNG_ROWS",
    "RACING_MODES",
    "Race",
    "RaceEntry",
    "Racing",
    "in_race_order",
    "parse_rungs",
]

RacingMode = Literal["off", "halving", "paired"]
RACING_MODES: tuple[RacingMode, ...] = ("off", "halving", "paired")
#: The smallest default rung: fewer rows say next to nothing about a candidate.
MIN_RUNG_ROWS = 8


@dataclasses.dataclass(frozen=True)
class RaceEntry:
    """What a racing decision knows of an earlier candidate: its per-row scores of the
    primary objective, in the order of the validation rows it was scored on (``rows``)."""

    per_item: tuple[float, ...]
    rows: int


@dataclasses.dataclass(frozen=True)
class Racing:
    """How candidates race (see the module docstring).

    Args:
        mode: ``off``, ``halving`` or ``paired``.
        rungs: rows scored at each rung before the whole split, increasing (default: a
            quarter and a half of the split, at least ``MIN_RUNG_ROWS`` rows each).
        keep: the share of a rung's candidates that go on (``halving``).
        level: the confidence with which a candidate must be worse to stop (``paired``).
    """

    mode: RacingMode = "off"
    rungs: tuple[int, ...] = ()
    keep: float = 1 / 3
    level: float = 0.95

    def __post_init__(self) -> None:
        if self.mode not in RACING_MODES:
            raise ConfigError(
                f"racing mode must be one of {', '.join(RACING_MODES)}; got {self.mode!r}"
            )
        if any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in self.rungs):
            raise ConfigError(f"racing rungs must be positive row counts; got {self.rungs!r}")
        if list(self.rungs) != sorted(set(self.rungs)):
            raise ConfigError(f"racing rungs must increase; got {list(self.rungs)}")
        if not 0.0 < self.keep < 1.0:
            raise ConfigError(f"racing keep must lie strictly between 0 and 1; got {self.keep}")
        if not 0.0 < self.level < 1.0:
            raise ConfigError(f"racing level must lie strictly between 0 and 1; got {self.level}")

    @property
    def on(self) -> bool:
        return self.mode != "off"

    def params(self) -> dict[str, object]:
        """The settings, for the checkpoint fingerprint and the report."""
        if not self.on:
            return {}
        return {
            "racing": self.mode,
            "rungs": list(self.rungs),
            **({"keep": self.keep} if self.mode == "halving" else {"level": self.level}),
        }

    def sizes(self, n: int) -> tuple[int, ...]:
        """Rows scored by the end of each rung for a split of ``n`` rows; the last is ``n``."""
        if not self.on:
            return (n,)
        wanted = self.rungs or (max(MIN_RUNG_ROWS, n // 4), max(MIN_RUNG_ROWS, n // 2))
        return (*sorted({r for r in wanted if r < n}), n)

    def order(self, n: int, seed: int) -> list[int]:
        """The validation rows in the order rungs take them: one seeded shuffle per search.

        >>> Racing("paired").order(5, seed=0) == Racing("paired").order(5, seed=0)
        True
        """
        rows = list(range(n))
        if self.on:
            random.Random(f"{seed}/racing").shuffle(rows)
        return rows

    def goes_on(
        self,
        mine: Sequence[float],
        rows: int,
        field: Sequence[RaceEntry],
        incumbent: RaceEntry,
        objective: Objective,
        *,
        rival_means: Sequence[float] | None = None,
    ) -> bool:
        """Whether a candidate with per-row scores ``mine`` on the first ``rows`` rows of the
        race order goes on to the next rung. ``field`` holds the candidates recorded before its
        step, ``incumbent`` the best of them scored in full; every entry's ``per_item`` is in
        race order. ``rival_means`` may pass ``rival_means(rows, field, objective)`` computed
        once for a whole step.

        >>> from sammo_core.objectives import Accuracy
        >>> inc = RaceEntry((1.0,) * 10 + (0.0,) * 10, 20)
        >>> paired = Racing("paired")
        >>> paired.goes_on([0.0] * 10, 10, [inc], inc, Accuracy())
        False
        >>> paired.goes_on([1.0] * 9 + [0.0], 10, [inc], inc, Accuracy())
        True
        """
        sign = 1.0 if objective.direction == "maximize" else -1.0
        if self.mode == "paired":
            diffs = [sign * (a - b) for a, b in zip(mine, incumbent.per_item[:rows], strict=False)]
            _, high = bootstrap_ci(diffs, self.level, seed=rows)
            return high >= 0.0
        mean = sign * math.fsum(mine) / len(mine)
        rivals = self.rival_means(rows, field, objective) if rival_means is None else rival_means
        places = max(1, math.ceil(self.keep * (len(rivals) + 1)))
        ahead = len(rivals) - bisect.bisect_right(rivals, mean)
        return ahead < places

    @staticmethod
    def rival_means(rows: int, field: Sequence[RaceEntry], objective: Objective) -> list[float]:
        """The means (signed so that higher is better) on the first ``rows`` race rows of the
        ``field``'s candidates that reached them, sorted: what ``halving`` ranks against.

        >>> from sammo_core.objectives import Accuracy
        >>> Racing.rival_means(2, [RaceEntry((1.0, 0.0, 1.0), 3), RaceEntry((0.0,), 1)], Accuracy())
        [0.5]
        """
        sign = 1.0 if objective.direction == "maximize" else -1.0
        return sorted(sign * math.fsum(e.per_item[:rows]) / rows for e in field if e.rows >= rows)


def parse_rungs(text: str) -> tuple[int, ...]:
    """Rung sizes from the command line: comma-separated row counts.

    >>> parse_rungs("10,20")
    (10, 20)
    >>> parse_rungs("10,x")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: --rungs takes increasing row counts, e.g. 10,20; got '10,x'
    """
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        sizes = ()
    if not sizes or list(sizes) != sorted(set(sizes)) or min(sizes) < 1:
        raise ConfigError(f"--rungs takes increasing row counts, e.g. 10,20; got {text!r}")
    return sizes


@dataclasses.dataclass(frozen=True)
class Race:
    """The racing rule as one step applies it: the rows' order, the rungs, and what the
    candidates recorded before the step scored (``field``; ``incumbent`` is the best of them
    scored in full), by the primary ``objective``."""

    racing: Racing
    order: Sequence[int]
    sizes: tuple[int, ...]
    objective: Objective
    field: Sequence[RaceEntry]
    incumbent: RaceEntry
    _rivals: dict[int, list[float]] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )  # the field's sorted rung means by rows, computed once per step

    def goes_on(self, scores: Mapping[str, Score], rows: int) -> bool:
        """Whether a candidate with ``scores`` on the first ``rows`` rows goes on."""
        per_item = scores[self.objective.name].per_item
        if per_item is None:  # pragma: no cover - checked when the search starts
            raise ConfigError(f"racing needs per-row scores; {self.objective.name} has none")
        mine = in_race_order(per_item, self.order, rows)
        rivals = None
        if self.racing.mode == "halving":
            rivals = self._rivals.get(rows)
            if rivals is None:
                rivals = self._rivals[rows] = Racing.rival_means(rows, self.field, self.objective)
        return self.racing.goes_on(
            mine, rows, self.field, self.incumbent, self.objective, rival_means=rivals
        )


def in_race_order(per_item: Sequence[float], order: Sequence[int], rows: int) -> list[float]:
    """Per-row scores of the first ``rows`` rows of ``order``, given in row-index order (as a
    result table holds them), rearranged into race order.

    >>> in_race_order([0.1, 0.2, 0.3], order=[2, 0, 1], rows=3)
    [0.3, 0.1, 0.2]
    >>> in_race_order([0.1, 0.3], order=[2, 0, 1], rows=2)
    [0.3, 0.1]
    """
    taken = order[:rows]
    by_row = dict(zip(sorted(taken), per_item, strict=True))
    return [by_row[i] for i in taken]
