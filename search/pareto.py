"""Pareto fronts over several objectives, and picks under constraints.

>>> from sammo_core.objectives import Score, get_objective
>>> from search.candidate import Candidate
>>> objs = [get_objective("accuracy"), get_objective("mean_prompt_tokens")]
>>> def cand(i, acc, tokens):
...     scores = {"accuracy": Score("accuracy", acc), "mean_prompt_tokens":
...               Score("mean_prompt_tokens", tokens)}
...     return Candidate(i, None, str(i), scores)
>>> pool = [cand(0, 0.8, 300), cand(1, 0.7, 100), cand(2, 0.6, 200), cand(3, 0.9, 500)]
>>> [c.id for c in pareto_front(pool, objs)]
[3, 0, 1]
>>> pick(pool, objs, limits={"mean_prompt_tokens": 250}).id
1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sammo_core.errors import ConfigError
from sammo_core.objectives import Objective
from search.candidate import Candidate, fitness

__all__ = ["dominates", "pareto_front", "pick"]


def _oriented(candidate: Candidate, objectives: Sequence[Objective]) -> list[float]:
    return [
        candidate.score(o.name) if o.direction == "maximize" else -candidate.score(o.name)
        for o in objectives
    ]


def dominates(a: Candidate, b: Candidate, objectives: Sequence[Objective]) -> bool:
    """``a`` is at least as good as ``b`` on every objective and better on one."""
    va, vb = _oriented(a, objectives), _oriented(b, objectives)
    return all(x >= y for x, y in zip(va, vb, strict=True)) and va != vb


def pareto_front(
    candidates: Sequence[Candidate], objectives: Sequence[Objective]
) -> list[Candidate]:
    """The non-dominated candidates, best first by the objectives in order; programs with
    equal scores are represented once (the oldest)."""
    ranked = sorted(candidates, key=lambda c: fitness(c, objectives), reverse=True)
    front: list[Candidate] = []
    for cand in ranked:
        if any(
            dominates(f, cand, objectives)
            or _oriented(f, objectives) == _oriented(cand, objectives)
            for f in front
        ):
            continue
        front.append(cand)
    return front


def pick(
    candidates: Sequence[Candidate],
    objectives: Sequence[Objective],
    limits: Mapping[str, float] | None = None,
) -> Candidate:
    """The best candidate (by the objectives in order) whose scores respect ``limits``.

    A limit is an upper bound for minimized objectives ("at most 250 prompt tokens") and a
    lower bound for maximized ones.
    """
    limits = dict(limits or {})
    directions = {o.name: o.direction for o in objectives}
    for name in limits:
        if name not in directions:
            raise ConfigError(
                f"cannot limit {name!r}: it is not one of the search objectives "
                f"({', '.join(directions)})"
            )

    def ok(c: Candidate) -> bool:
        return all(
            c.score(n) <= v if directions[n] == "minimize" else c.score(n) >= v
            for n, v in limits.items()
        )

    eligible = [c for c in candidates if ok(c)]
    if not eligible:
        raise ConfigError(f"no candidate meets the limits {limits}; relax them")
    return max(eligible, key=lambda c: fitness(c, objectives))
