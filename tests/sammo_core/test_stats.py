"""Intervals for a share of rows, the exact McNemar test and paired comparisons, checked
against published figures."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sammo_core.errors import ConfigError, DataError
from sammo_core.objectives import bootstrap_ci
from sammo_core.stats import (
    PairedComparison,
    clopper_pearson_interval,
    compare_paired,
    mcnemar_exact,
    wilson_interval,
)

# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I:
# methods 3 (Wilson score, no continuity correction) and 5 (Clopper-Pearson exact), 95%.
NEWCOMBE = [
    # successes, n, Wilson, Clopper-Pearson
    (81, 263, (0.2553, 0.3662), (0.2527, 0.3676)),
    (15, 148, (0.0624, 0.1605), (0.0578, 0.1617)),
    (0, 20, (0.0, 0.1611), (0.0, 0.1684)),
    (1, 29, (0.0061, 0.1718), (0.0009, 0.1776)),
]


@pytest.mark.parametrize(("k", "n", "wilson", "exact"), NEWCOMBE)
def test_intervals_match_newcombes_table(
    k: int, n: int, wilson: tuple[float, float], exact: tuple[float, float]
) -> None:
    assert wilson_interval(k, n) == pytest.approx(wilson, abs=5e-5)
    assert clopper_pearson_interval(k, n) == pytest.approx(exact, abs=5e-5)


def test_four_of_four_is_not_certainty() -> None:
    low, high = wilson_interval(4, 4)
    assert low == pytest.approx(0.5101, abs=1e-4) and high == 1.0
    assert bootstrap_ci([1.0] * 4) == (1.0, 1.0)  # what a bootstrap claims from four rows
    # The exact bounds at the edges have closed forms: (alpha/2)^(1/n) and 1 - that.
    assert clopper_pearson_interval(4, 4)[0] == pytest.approx(0.025**0.25, abs=1e-9)
    assert clopper_pearson_interval(0, 10)[1] == pytest.approx(1 - 0.025**0.1, abs=1e-9)
    assert clopper_pearson_interval(0, 10)[1] == pytest.approx(0.3085, abs=1e-4)
    assert clopper_pearson_interval(5, 10, level=0.99) == pytest.approx((0.1283, 0.8717), abs=1e-4)


@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_intervals_hold_the_share_and_the_exact_one_has_its_tail_probabilities(
    case: tuple[int, int],
) -> None:
    k, n = case
    w_low, w_high = wilson_interval(k, n)
    e_low, e_high = clopper_pearson_interval(k, n)
    assert 0.0 <= w_low <= k / n <= w_high <= 1.0 and 0.0 <= e_low <= k / n <= e_high <= 1.0
    narrow = wilson_interval(k, n, level=0.8)
    assert w_low <= narrow[0] and narrow[1] <= w_high

    def at_most(x: int, p: float) -> float:  # P(Binomial(n, p) <= x), summed directly
        return math.fsum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(x + 1))

    if k > 0:  # seeing k or more is a 2.5% event at the lower bound
        assert 1.0 - at_most(k - 1, e_low) == pytest.approx(0.025, abs=1e-9)
    if k < n:  # seeing k or fewer is a 2.5% event at the upper bound
        assert at_most(k, e_high) == pytest.approx(0.025, abs=1e-9)


def test_bad_counts_and_levels_name_the_value() -> None:
    with pytest.raises(DataError, match="n=0"):
        wilson_interval(0, 0)
    with pytest.raises(DataError, match="successes=5, n=4"):
        clopper_pearson_interval(5, 4)
    with pytest.raises(ConfigError, match="level"):
        wilson_interval(1, 2, level=95)
    with pytest.raises(ConfigError, match=r"c=-1"):
        mcnemar_exact(3, -1)


def test_mcnemar_matches_the_binomial_test() -> None:
    assert mcnemar_exact(1, 9) == pytest.approx(0.021484375)  # 2 * 11 / 1024
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9)
    assert mcnemar_exact(5, 5) == 1.0 and mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    # Against the definition, summed in floats, for a range of counts.
    for b, c in [(3, 11), (20, 35), (0, 1), (7, 8)]:
        n = b + c
        tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
        assert mcnemar_exact(b, c) == pytest.approx(min(1.0, 2 * tail), rel=1e-12)
    assert 0.0 < mcnemar_exact(40_000, 50_000) < 1e-200  # large counts stay exact, no underflow


def test_a_program_that_wins_on_most_disagreeing_rows_shows_it_where_intervals_overlap() -> None:
    """100 rows: the two agree on 84, the first wins 12 of the other 16. Separate bootstrap
    intervals overlap widely; the paired comparison counts the rows and tests them."""
    rng = random.Random(3)
    agree = [float(rng.random() < 0.6) for _ in range(84)]
    a = [1.0] * 12 + [0.0] * 4 + agree
    b = [0.0] * 12 + [1.0] * 4 + agree
    result = compare_paired(a, b, seed=1)
    assert result.diff == pytest.approx(0.08)
    assert (result.n, result.wins, result.losses) == (100, 12, 4)
    assert result.p_value == pytest.approx(mcnemar_exact(12, 4))
    assert result.p_value == pytest.approx(0.0768, abs=1e-4)
    assert result.ci_low <= result.diff <= result.ci_high
    a_low, a_high = bootstrap_ci(a, seed=1)
    b_low, b_high = bootstrap_ci(b, seed=1)
    assert a_low < b_high  # the separate intervals overlap
    assert result.ci_high - result.ci_low < min(a_high - a_low, b_high - b_low)
    assert compare_paired(a, b, seed=1) == result  # deterministic per seed
    text = str(result)
    assert text.startswith("+0.080 [")
    assert text.endswith("(n=100; 12 rows better, 4 worse; McNemar p=0.077)")
    assert result.to_dict()["p_value"] == result.p_value


def test_the_comparison_of_a_clear_winner_excludes_zero() -> None:
    a = [1.0] * 30 + [1.0] * 70
    b = [0.0] * 30 + [1.0] * 70
    result = compare_paired(a, b)
    assert result.excludes_zero and result.ci_low > 0
    assert result.p_value == pytest.approx(2 / 2**30)
    assert "McNemar p=1.9e-09" in str(result)


def test_graded_scores_get_no_mcnemar_and_direction_decides_which_rows_are_better() -> None:
    tokens_a, tokens_b = [10.0, 12.0, 30.0], [20.0, 20.0, 20.0]
    result = compare_paired(tokens_a, tokens_b, direction="minimize")
    assert result.p_value is None
    assert (result.wins, result.losses) == (2, 1)  # fewer tokens is better
    assert result.diff == pytest.approx(-8 / 3)
    assert "McNemar" not in str(result)
    assert compare_paired(tokens_a, tokens_b).wins == 1
    assert compare_paired([1.0, 0.0], [1.0, 0.0]) == PairedComparison(0.0, 0.0, 0.0, 2, 0, 0, 1.0)


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(DataError, match=r"same rows.*got 3 and 2 items"):
        compare_paired([1.0, 0.0, 1.0], [1.0, 0.0])
    with pytest.raises(DataError, match="at least one row"):
        compare_paired([], [])
    with pytest.raises(ConfigError, match="direction"):
        compare_paired([1.0], [0.0], direction="up")  # type: ignore[arg-type]
