"""The statistics and tables of multi-seed bench runs (:mod:`benchmarks.seeds`)."""

from __future__ import annotations

import statistics

import pytest

from benchmarks.seeds import (
    aggregate,
    aggregate_rows,
    choose_seeds,
    paired_test,
    parse_seeds,
)
from sammo_core.errors import ConfigError
from sammo_core.objectives import Score
from sammo_core.stats import mcnemar_exact as _mcnemar_exact


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        (1, 9, 0.021484375),  # 2 * (1 + 10) / 2**10, the textbook example
        (9, 1, 0.021484375),  # two-sided: symmetric in b and c
        (5, 5, 1.0),
        (0, 0, 1.0),  # no discordant rows: no evidence either way
        (0, 5, 0.0625),  # 2 / 2**5
        (2, 8, 0.109375),  # 2 * (1 + 10 + 45) / 2**10
    ],
)
def test_mcnemar_exact_matches_textbook_values(b: int, c: int, p: float) -> None:
    assert _mcnemar_exact(b, c) == pytest.approx(p, abs=1e-12)


def test_mcnemar_exact_is_exact_for_many_rows() -> None:
    # Integer tails: no overflow in the binomial coefficients, no rounding of 2**-999.
    assert _mcnemar_exact(0, 1000) == 2.0**-999
    assert _mcnemar_exact(600, 600) == 1.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0,x", "--seeds '0,x': 'x' is not an integer; give comma-separated integers"),
        ("", "--seeds '' names no seed; give comma-separated integers, e.g. --seeds 0,1,2"),
        (",", "--seeds ',' names no seed"),
        ("1.5", "'1.5' is not an integer"),
        ("0,,1", "'' is not an integer"),
        ("2,2", "names seed 2 twice; give each seed once"),
    ],
)
def test_bad_seeds_name_the_value_and_the_fix(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_seeds(text)
    assert message in str(caught.value)


def test_seed_and_seeds_are_one_or_the_other() -> None:
    assert choose_seeds(None, " 2, 0 ,-1") == (2, 0, -1)
    assert choose_seeds(7, None) == (7,)
    with pytest.raises(ConfigError, match="--seed 0 and --seeds '1,2' both given; use --seed N"):
        choose_seeds(0, "1,2")


def test_paired_test_counts_discordant_rows() -> None:
    # 10 rows: the winner alone gets 9 right, the baseline alone 1, both get none.
    winner = Score("acc", 0.9, per_item=(1.0,) * 9 + (0.0,), n=10)
    baseline = Score("acc", 0.1, per_item=(0.0,) * 9 + (1.0,), n=10)
    paired = paired_test(baseline, winner)
    assert paired is not None
    assert (paired["winner_only"], paired["baseline_only"], paired["n"]) == (9, 1, 10)
    assert paired["mcnemar_p"] == pytest.approx(0.021484375)
    assert paired["diff"] == pytest.approx(0.8)
    assert paired["ci_low"] <= 0.8 <= paired["ci_high"]
    assert paired["beats"] == (paired["ci_low"] > 0)
    # For a score to minimize, "beats" means the interval lies below 0.
    assert paired_test(winner, baseline, "minimize")["beats"] is True  # type: ignore[index]


def test_paired_test_needs_per_row_scores_and_skips_mcnemar_for_graded_ones() -> None:
    assert paired_test(Score("acc", 0.5), Score("acc", 0.6)) is None
    graded = paired_test(
        Score("f1", 0.4, per_item=(0.5, 0.3), n=2), Score("f1", 0.6, per_item=(0.5, 0.7), n=2)
    )
    assert graded is not None and graded["mcnemar_p"] is None and graded["winner_only"] is None
    assert graded["diff"] == pytest.approx(0.2)


def _record(base: float, best: float, beats: bool | None) -> dict[str, object]:
    return {
        "objective": "label_accuracy",
        "direction": "maximize",
        "baseline": {"test": {"value": base}},
        "optimized": {"test": {"value": best}},
        "paired": None if beats is None else {"diff": best - base, "beats": beats},
    }


def test_aggregate_spreads_winners_and_gains_across_seeds() -> None:
    seeds = [
        {"seed": 0, "tasks": {"a": _record(0.5, 0.75, True)}},
        {"seed": 1, "tasks": {"a": _record(0.5, 0.5, False), "b": _record(0.2, 0.4, None)}},
        {"seed": 2, "tasks": {"a": _record(0.25, 0.5, False)}},
    ]
    agg = aggregate(seeds)["tasks"]
    a = agg["a"]
    assert a["seeds"] == [0, 1, 2]
    assert [r["winner"] for r in a["per_seed"]] == [0.75, 0.5, 0.5]
    assert a["winner_test"]["mean"] == pytest.approx(statistics.mean([0.75, 0.5, 0.5]))
    assert a["winner_test"]["std"] == pytest.approx(statistics.stdev([0.75, 0.5, 0.5]))
    assert (a["gain"]["min"], a["gain"]["max"]) == (0.0, 0.25)
    assert (a["beats"], a["paired"]) == (1, 3)
    # One seed only: no standard deviation, and no paired test to count.
    assert agg["b"]["winner_test"]["std"] is None and agg["b"]["paired"] == 0
    rows = aggregate_rows({"seeds": seeds, "aggregate": {"tasks": agg}})
    assert rows[0][3] == "0.583 ± 0.144 [0.500, 0.750]"
    assert rows[0][5] == "1 of 3"
    assert rows[1][3:] == ("0.400 ± - [0.400, 0.400]", "+0.200 ± - [+0.200, +0.200]", "-")
