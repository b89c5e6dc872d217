"""Seeds as a dimension of ``sammo-core bench run --seeds 0,1,2``: the seeds a run takes, the
paired test of a winner against its baseline, and the aggregate across seeds.

A multi-seed run searches every task once per seed. Each (task, seed) gives the record a
one-seed run gives (:func:`paired_test` adds winner - baseline on the same test rows, with a
paired bootstrap interval and, for 0/1 scores, an exact McNemar p-value); :func:`aggregate`
sums them up per task: each seed's baseline and winner test scores, the mean, sample standard
deviation and range of the winner's score and of its gain over the baseline, and how many seeds'
winners beat their baseline with a paired interval that excludes 0.

``results.json`` of a multi-seed run holds a ``seeds`` list (one entry per seed: its ``tasks``
records and ``errors``, as a one-seed run's) and an ``aggregate`` section; a one-seed run keeps
the one-seed shape (``tasks`` at the top), which :func:`is_multi_seed` tells apart.

>>> parse_seeds("0, 1,2")
(0, 1, 2)
>>> spread([0.5, 0.7])
{'mean': 0.6, 'std': 0.14142135623730948, 'min': 0.5, 'max': 0.7, 'n': 2}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from benchmarks.score_text import format_score
from sammo_core.errors import ConfigError
from sammo_core.objectives import Score
from sammo_core.stats import compare_paired

__all__ = [
    "AGGREGATE_HEADER",
    "PER_SEED_HEADER",
    "aggregate",
    "aggregate_rows",
    "choose_seeds",
    "flat_tasks",
    "is_multi_seed",
    "paired_test",
    "parse_seeds",
    "per_seed_rows",
    "spread",
]

_SEEDS_FIX = "give comma-separated integers, e.g. --seeds 0,1,2"


def parse_seeds(text: str) -> tuple[int, ...]:
    """The seeds of ``--seeds`` (comma-separated integers, each once), in the order given.

    >>> parse_seeds("3,1")
    (3, 1)
    >>> parse_seeds("0,x")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: --seeds '0,x': 'x' is not an integer; give comma-separated integers, e.g. --seeds 0,1,2
    >>> parse_seeds(" , ")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: --seeds ' , ' names no seed; give comma-separated integers, e.g. --seeds 0,1,2
    >>> parse_seeds("1,2,1")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: --seeds '1,2,1' names seed 1 twice; give each seed once
    """  # noqa: E501
    parts = [p.strip() for p in text.split(",")]
    if not any(parts):
        raise ConfigError(f"--seeds {text!r} names no seed; {_SEEDS_FIX}")
    seeds: list[int] = []
    for part in parts:
        try:
            seed = int(part)
        except ValueError:
            raise ConfigError(
                f"--seeds {text!r}: {part!r} is not an integer; {_SEEDS_FIX}"
            ) from None
        if not -(2**63) <= seed < 2**63:  # stored as a 64-bit JSON integer in results.json
            raise ConfigError(
                f"--seeds {text!r}: seed {part} is out of range; use whole numbers from -2**63 "
                "to 2**63 - 1"
            )
        if seed in seeds:
            raise ConfigError(f"--seeds {text!r} names seed {seed} twice; give each seed once")
        seeds.append(seed)
    return tuple(seeds)


def choose_seeds(seed: int | None, seeds: str | None) -> tuple[int, ...]:
    """The seeds a run takes from ``--seed N`` or ``--seeds N,M,...`` (neither: seed 0).

    >>> choose_seeds(None, None), choose_seeds(4, None), choose_seeds(None, "0,1")
    ((0,), (4,), (0, 1))
    >>> choose_seeds(1, "0,1")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: --seed 1 and --seeds '0,1' both given; use --seed N for one seed or --seeds N,M,... for several
    """  # noqa: E501
    if seed is not None and seeds is not None:
        raise ConfigError(
            f"--seed {seed} and --seeds {seeds!r} both given; use --seed N for one seed or "
            "--seeds N,M,... for several"
        )
    if seeds is not None:
        return parse_seeds(seeds)
    return (0 if seed is None else seed,)


# -- statistics ------------------------------------------------------------------------------


def paired_test(
    baseline: Score | None, winner: Score | None, direction: str = "maximize", seed: int = 0
) -> dict[str, Any] | None:
    """Winner - baseline on the same test rows, from their per-row scores (``None`` without
    them): the mean difference with a paired bootstrap 95% interval (``seed`` draws the
    resamples), and for 0/1 scores the rows only the winner or only the baseline gets right
    and the exact McNemar p-value. ``beats`` says the interval lies on the better side of 0.

    >>> base = Score("acc", 0.5, per_item=(1.0, 0.0) * 10, n=20)
    >>> best = Score("acc", 0.9, per_item=(1.0, 1.0) * 8 + (1.0, 0.0) * 2, n=20)
    >>> t = paired_test(base, best)
    >>> round(t["diff"], 3), t["winner_only"], t["baseline_only"], round(t["mcnemar_p"], 4)
    (0.4, 8, 0, 0.0078)
    >>> t["ci_low"] > 0, t["beats"]
    (True, True)
    """
    if baseline is None or winner is None or not baseline.per_item or not winner.per_item:
        return None
    a, b = winner.per_item, baseline.per_item
    found = compare_paired(
        a, b, seed=seed, direction="minimize" if direction == "minimize" else "maximize"
    )
    beats = found.ci_low > 0 if direction == "maximize" else found.ci_high < 0
    binary = found.p_value is not None
    return {
        "diff": found.diff,
        "ci_low": found.ci_low,
        "ci_high": found.ci_high,
        "n": found.n,
        "beats": beats,
        "winner_only": found.wins if binary else None,
        "baseline_only": found.losses if binary else None,
        "mcnemar_p": found.p_value,
    }


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (``None`` for one value), min and max of ``values``.

    >>> spread([0.8])
    {'mean': 0.8, 'std': None, 'min': 0.8, 'max': 0.8, 'n': 1}
    """
    n = len(values)
    if not n:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return {"mean": mean, "std": std, "min": min(values), "max": max(values), "n": n}


# -- the aggregate ---------------------------------------------------------------------------


def is_multi_seed(results: Mapping[str, Any]) -> bool:
    """Whether ``results`` (a ``results.json``) is a multi-seed run.

    >>> is_multi_seed({"tasks": {}}), is_multi_seed({"seeds": [], "aggregate": {}})
    (False, True)
    """
    return "seeds" in results


def _value(score: Mapping[str, Any] | None) -> float | None:
    return None if not score else float(score["value"])


def aggregate(seeds: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``aggregate`` section from the ``seeds`` entries (``{"seed", "tasks", ...}``).

    Per task, in the order the tasks first appear: each seed's baseline and winner test
    score, winner - baseline and paired test; the spread (:func:`spread`) of the winner's score
    and of the gain; ``beats``: how many seeds' winners beat their baseline with a paired
    interval excluding 0, of ``paired`` seeds with a paired test.

    >>> rec = lambda b, w: {"objective": "acc", "direction": "maximize",
    ...     "baseline": {"test": {"value": b}}, "optimized": {"test": {"value": w}},
    ...     "paired": {"diff": w - b, "beats": w - b > 0.15}}
    >>> agg = aggregate([{"seed": 0, "tasks": {"t": rec(0.5, 0.6)}},
    ...                  {"seed": 1, "tasks": {"t": rec(0.5, 0.8)}}])
    >>> t = agg["tasks"]["t"]
    >>> t["seeds"], round(t["winner_test"]["mean"], 3), round(t["gain"]["max"], 3), t["beats"]
    ([0, 1], 0.7, 0.3, 1)
    """
    tasks: dict[str, dict[str, Any]] = {}
    for entry in seeds:
        for name, record in entry.get("tasks", {}).items():
            task = tasks.setdefault(
                name,
                {
                    "objective": record["objective"],
                    "direction": record.get("direction", "maximize"),
                    "seeds": [],
                    "per_seed": [],
                },
            )
            base = _value(record["baseline"].get("test"))
            best = _value(record["optimized"].get("test"))
            task["seeds"].append(entry["seed"])
            task["per_seed"].append(
                {
                    "seed": entry["seed"],
                    "baseline": base,
                    "winner": best,
                    "gain": None if base is None or best is None else best - base,
                    "paired": record.get("paired"),
                }
            )
    for task in tasks.values():
        rows = task["per_seed"]
        task["winner_test"] = spread([r["winner"] for r in rows if r["winner"] is not None])
        task["gain"] = spread([r["gain"] for r in rows if r["gain"] is not None])
        paired = [r["paired"] for r in rows if r["paired"]]
        task["paired"] = len(paired)
        task["beats"] = sum(1 for p in paired if p["beats"])
    return {"tasks": tasks}


def flat_tasks(results: Mapping[str, Any]) -> dict[str, Any]:
    """Every record of a run by a display name: the task (one seed), or ``task (seed s)``.

    >>> flat_tasks({"seeds": [{"seed": 2, "tasks": {"t": {}}}], "aggregate": {}})
    {'t (seed 2)': {}}
    """
    if not is_multi_seed(results):
        return dict(results.get("tasks", {}))
    return {
        f"{name} (seed {entry['seed']})": record
        for entry in results["seeds"]
        for name, record in entry.get("tasks", {}).items()
    }


# -- table rows ------------------------------------------------------------------------------

PER_SEED_HEADER = (
    "task",
    "seed",
    "baseline (test)",
    "optimized (test)",
    "diff [paired 95% CI]",
    "McNemar p",
    "tokens/input",
    "calls",
    "s",
)

AGGREGATE_HEADER = (
    "task",
    "objective",
    "seeds",
    "optimized (test): mean ± sd [min, max]",
    "diff: mean ± sd [min, max]",
    "beat baseline (paired CI excl. 0)",
)


def _paired_cell(record: Mapping[str, Any]) -> str:
    paired = record.get("paired")
    if not paired:
        base, best = _value(record["baseline"].get("test")), _value(record["optimized"].get("test"))
        return "-" if base is None or best is None else f"{best - base:+.3f}"
    return f"{paired['diff']:+.3f} [{paired['ci_low']:+.3f}, {paired['ci_high']:+.3f}]"


def _p_cell(record: Mapping[str, Any]) -> str:
    paired = record.get("paired") or {}
    if paired.get("mcnemar_p") is None:
        return "-"
    return f"{paired['mcnemar_p']:.3g} ({paired['winner_only']}/{paired['baseline_only']})"


def per_seed_rows(results: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """One row per (task, seed) of a multi-seed run, grouped by task (:data:`PER_SEED_HEADER`;
    McNemar p shows the rows only the winner / only the baseline got right)."""
    by_task: dict[str, list[tuple[str, ...]]] = {}
    for entry in results.get("seeds", []):
        for name, record in entry.get("tasks", {}).items():
            base, best = record["baseline"], record["optimized"]
            by_task.setdefault(name, []).append(
                (
                    name,
                    str(entry["seed"]),
                    format_score(base.get("test")),
                    format_score(best.get("test")),
                    _paired_cell(record),
                    _p_cell(record),
                    f"{base['prompt_tokens']:.0f} -> {best['prompt_tokens']:.0f}",
                    f"{record['calls']:,}",
                    f"{record['seconds']:.1f}",
                )
            )
    return [row for rows in by_task.values() for row in rows]


def _spread_cell(stats: Mapping[str, Any], signed: bool = False) -> str:
    if not stats.get("n"):
        return "-"
    number = "{:+.3f}" if signed else "{:.3f}"
    std = "-" if stats["std"] is None else f"{stats['std']:.3f}"
    low, high = number.format(stats["min"]), number.format(stats["max"])
    return f"{number.format(stats['mean'])} ± {std} [{low}, {high}]"


def aggregate_rows(results: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """One row per task of a multi-seed run's aggregate (:data:`AGGREGATE_HEADER`).

    >>> agg = {"tasks": {"t": {"objective": "acc", "seeds": [0, 1], "paired": 2, "beats": 1,
    ...     "winner_test": spread([0.6, 0.8]), "gain": spread([0.1, 0.3])}}}
    >>> aggregate_rows({"seeds": [], "aggregate": agg})[0]
    ('t', 'acc', '0, 1', '0.700 ± 0.141 [0.600, 0.800]', '+0.200 ± 0.141 [+0.100, +0.300]', '1 of 2')
    """  # noqa: E501
    rows: list[tuple[str, ...]] = []
    for name, task in results.get("aggregate", {}).get("tasks", {}).items():
        rows.append(
            (
                name,
                task["objective"],
                ", ".join(str(s) for s in task["seeds"]),
                _spread_cell(task["winner_test"]),
                _spread_cell(task["gain"], signed=True),
                f"{task['beats']} of {task['paired']}" if task["paired"] else "-",
            )
        )
    return rows
