"""Comparing scores honestly: intervals for a share of rows, and paired comparisons.

Two programs scored on the *same* rows are compared row by row, not by two separate
intervals: separate intervals overlap on 50-100 rows even when one program wins on nearly every
row, while the paired difference (:func:`compare_paired`) sees that the rows the two agree on
carry no information about which is better. For 0/1 scores (accuracies) it adds the exact
McNemar test on the rows where they disagree.

A single accuracy is a share of rows, a binomial proportion: :func:`wilson_interval` gives its
interval (it never claims certainty from a few rows, as a bootstrap of 4 right answers out of
4 would, ``[1.000, 1.000]``); :func:`clopper_pearson_interval` is the exact, more conservative
one. No SciPy: the beta quantiles are found by bisection on the regularized incomplete beta
function.

>>> a = [1.0] * 12 + [0.0] * 4 + [1.0] * 60 + [0.0] * 24
>>> b = [0.0] * 12 + [1.0] * 4 + [1.0] * 60 + [0.0] * 24
>>> print(compare_paired(a, b))
+0.080 [+0.000, +0.160] (n=100; 12 rows better, 4 worse; McNemar p=0.077)
>>> low, high = wilson_interval(4, 4)
>>> round(low, 3), high
(0.51, 1.0)
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

from sammo_core.errors import ConfigError, DataError

__all__ = [
    "PairedComparison",
    "clopper_pearson_interval",
    "compare_paired",
    "format_p",
    "is_binary",
    "mcnemar_exact",
    "wilson_interval",
]

Direction = Literal["maximize", "minimize"]


def _check_counts(successes: int, n: int, name: str) -> None:
    for label, value in (("successes", successes), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} needs whole numbers; got {label}={value!r}")
    if n < 1:
        raise DataError(f"{name} needs at least one row; got n={n}")
    if not 0 <= successes <= n:
        raise DataError(f"{name} needs 0 <= successes <= n; got successes={successes}, n={n}")


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ConfigError(f"the interval's level must lie strictly between 0 and 1; got {level!r}")


def is_binary(items: Sequence[float]) -> bool:
    """Whether every item is 0 or 1 (and there is one): scores that count right rows.

    >>> is_binary([1.0, 0.0, 1]), is_binary([1.0, 0.5]), is_binary([])
    (True, False, False)
    """
    return bool(items) and all(v in (0.0, 1.0) for v in items)


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of the proportion ``successes / n``.

    Good coverage even for few rows or a proportion near 0 or 1, where the normal
    approximation and the bootstrap claim too much (Newcombe 1998; Agresti & Coull 1998).

    >>> [round(x, 4) for x in wilson_interval(4, 4)]
    [0.5101, 1.0]
    >>> [round(x, 4) for x in wilson_interval(0, 10)]
    [0.0, 0.2775]
    >>> [round(x, 4) for x in wilson_interval(81, 263)]
    [0.2553, 0.3662]
    >>> wilson_interval(3, 2)
    Traceback (most recent call last):
    ...
    sammo_core.errors.DataError: wilson_interval needs 0 <= successes <= n; got successes=3, n=2
    """
    _check_counts(successes, n, "wilson_interval")
    _check_level(level)
    z = statistics.NormalDist().inv_cdf((1.0 + level) / 2.0)
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n))
    # The bounds at 0 and n are exact: rounding must not move them off 0 or 1.
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == n else min(1.0, center + half)
    return (low, high)


def clopper_pearson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of the proportion ``successes / n``.

    Its bounds are beta quantiles: the ``p`` at which seeing ``successes`` or more (for the
    lower bound), or ``successes`` or fewer (for the upper), has probability ``(1 - level) / 2``.
    Its coverage is never below ``level``, so it is mostly wider than :func:`wilson_interval`.

    >>> [round(x, 4) for x in clopper_pearson_interval(0, 10)]
    [0.0, 0.3085]
    >>> [round(x, 4) for x in clopper_pearson_interval(4, 4)]
    [0.3976, 1.0]
    >>> [round(x, 4) for x in clopper_pearson_interval(81, 263)]
    [0.2527, 0.3676]
    """
    _check_counts(successes, n, "clopper_pearson_interval")
    _check_level(level)
    tail = (1.0 - level) / 2.0
    low = 0.0
    if successes > 0:  # P(X >= successes | p) = I_p(successes, n - successes + 1), rising in p
        low = _bisect(lambda p: _betainc(successes, n - successes + 1, p) - tail)
    high = 1.0
    if successes < n:  # P(X <= successes | p) = 1 - I_p(successes + 1, n - successes)
        high = _bisect(lambda p: tail - (1.0 - _betainc(successes + 1, n - successes, p)))
    return (low, high)


def mcnemar_exact(b: int, c: int) -> float:
    """The exact two-sided McNemar p-value for ``b`` and ``c`` discordant pairs.

    ``b``: rows the first program gets right and the second wrong; ``c``: the reverse. Under
    "neither is better" each discordant row is a fair coin, so the p-value is the binomial
    test ``min(1, 2 * P(X <= min(b, c)))``, ``X ~ Binomial(b + c, 1/2)``, computed in exact
    integers; no discordant row gives 1.

    >>> round(mcnemar_exact(1, 9), 5), mcnemar_exact(5, 5), mcnemar_exact(0, 0)
    (0.02148, 1.0, 1.0)
    >>> round(mcnemar_exact(12, 4), 4)
    0.0768
    """
    for name, value in (("b", b), ("c", c)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"mcnemar_exact needs counts >= 0; got {name}={value!r}")
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    term, total = 1, 1  # C(n, 0), and the sum of C(n, i) for i <= k
    for i in range(1, k + 1):
        term = term * (n - i + 1) // i
        total += term
    # 2 * total / 2**n; int / int is correctly rounded however large the two are.
    return min(1.0, total / (1 << (n - 1)))


@dataclasses.dataclass(frozen=True)
class PairedComparison:
    """Program ``a`` against program ``b`` on the same rows (see :func:`compare_paired`).

    ``diff`` is the mean of ``a - b`` with its paired bootstrap interval; ``wins`` and
    ``losses`` count the rows where ``a`` is better and worse (by ``direction``); ``p_value``
    is the exact McNemar p-value when every score is 0 or 1, else ``None``.

    >>> print(PairedComparison(0.08, 0.02, 0.14, 100, 12, 4, 0.0768))
    +0.080 [+0.020, +0.140] (n=100; 12 rows better, 4 worse; McNemar p=0.077)
    >>> print(PairedComparison(-0.5, -0.9, -0.1, 30, 1, 9, None))
    -0.500 [-0.900, -0.100] (n=30; 1 row better, 9 worse)
    """

    diff: float
    ci_low: float
    ci_high: float
    n: int
    wins: int
    losses: int
    p_value: float | None
    level: float = 0.95
    direction: Direction = "maximize"

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly on one side of 0: a difference rows like these
        would show again.

        >>> PairedComparison(0.08, 0.02, 0.14, 100, 12, 4, 0.08).excludes_zero
        True
        """
        return self.ci_low > 0.0 or self.ci_high < 0.0

    def __str__(self) -> str:
        better = f"{self.wins} row{'' if self.wins == 1 else 's'} better, {self.losses} worse"
        test = "" if self.p_value is None else f"; McNemar p={format_p(self.p_value)}"
        return (
            f"{self.diff:+.3f} [{self.ci_low:+.3f}, {self.ci_high:+.3f}] "
            f"(n={self.n}; {better}{test})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields.

        >>> PairedComparison(0.5, 0.0, 1.0, 2, 1, 0, 1.0).to_dict()["wins"]
        1
        """
        return dataclasses.asdict(self)


def format_p(p: float) -> str:
    """A p-value for reading: three decimals, or two significant digits below 0.001.

    >>> format_p(0.0768), format_p(1.0), format_p(0.000012)
    ('0.077', '1.000', '1.2e-05')
    """
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def compare_paired(
    a: Sequence[float],
    b: Sequence[float],
    *,
    level: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    direction: Direction = "maximize",
) -> PairedComparison:
    """Compare per-row scores ``a`` and ``b`` of two programs on the same rows, in order.

    The difference of means ``a - b`` gets a paired bootstrap interval
    (:func:`~sammo_core.objectives.paired_difference`, deterministic for a ``seed``); rows
    where ``a`` scores better (higher, or lower for ``direction="minimize"``) and worse are
    counted; when every score is 0 or 1, the exact McNemar test (:func:`mcnemar_exact`) says
    how surprising that split of the disagreeing rows would be if neither program were better.

    >>> result = compare_paired([1, 1, 0, 1], [0, 1, 0, 0])
    >>> result.diff, result.wins, result.losses, result.p_value
    (0.5, 2, 0, 0.5)
    >>> compare_paired([0.2, 0.9], [0.1, 0.4]).p_value is None  # not 0/1: no McNemar
    True
    >>> compare_paired([1.0, 0.0], [1.0])
    Traceback (most recent call last):
    ...
    sammo_core.errors.DataError: compare_paired needs the scores of the same rows, in the same \
order; got 2 and 1 items (score both programs on one data table)
    """
    if direction not in ("maximize", "minimize"):
        raise ConfigError(f"direction must be 'maximize' or 'minimize'; got {direction!r}")
    xs, ys = [float(v) for v in a], [float(v) for v in b]
    if len(xs) != len(ys):
        raise DataError(
            "compare_paired needs the scores of the same rows, in the same order; got "
            f"{len(xs)} and {len(ys)} items (score both programs on one data table)"
        )
    if not xs:
        raise DataError("compare_paired needs at least one row; got none")
    diff, low, high = paired_difference(xs, ys, level, n_resamples, seed)
    sign = 1.0 if direction == "maximize" else -1.0
    wins = sum(1 for x, y in zip(xs, ys, strict=True) if sign * (x - y) > 0)
    losses = sum(1 for x, y in zip(xs, ys, strict=True) if sign * (x - y) < 0)
    p_value = mcnemar_exact(wins, losses) if is_binary(xs) and is_binary(ys) else None
    return PairedComparison(diff, low, high, len(xs), wins, losses, p_value, level, direction)


# -- the incomplete beta function ----------------------------------------------------------------

_TINY = 1e-300


def _bisect(f: Any, iterations: int = 100) -> float:
    """The root of ``f`` in [0, 1], for ``f`` rising from below 0 to above 0."""
    lo, hi = 0.0, 1.0
    for _ in range(iterations):
        mid = (lo + hi) / 2.0
        if f(mid) < 0.0:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    return (lo + hi) / 2.0


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), by its continued fraction.

    >>> round(_betainc(2, 3, 0.4), 6)  # 1 - P(Binomial(4, 0.4) <= 1) = 1 - 0.4752
    0.5248
    """
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # The continued fraction converges fast on this side of the mean; use the symmetry else.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz's method)."""

    def floor(v: float) -> float:
        return v if abs(v) >= _TINY else _TINY

    c, d = 1.0, 1.0 / floor(1.0 - (a + b) * x / (a + 1.0))
    h = d
    for m in range(1, 100_000):
        even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        d = 1.0 / floor(1.0 + even * d)
        c = floor(1.0 + even / c)
        h *= d * c
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 / floor(1.0 + odd * d)
        c = floor(1.0 + odd / c)
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-15:
            break
    return h


# -- bootstrap intervals (objectives report them; paired comparisons use them) ---------------


def bootstrap_ci(
    per_item: Sequence[float], level: float = 0.95, n_resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``per_item``; deterministic for a seed.

    Draws ``n_resamples`` resamples (with replacement, from ``random.Random(seed)``) and returns
    the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of their means. Equal items give
    ``(v, v)``. An empty sequence raises :class:`DataError`: no data, no interval.

    A resample is drawn by counting, not row by row: its mean depends only on how often it
    holds each distinct value, and those counts are multinomial, drawn as one binomial per
    distinct value (for 0/1 scores, one binomial draw per resample). So the cost grows with the
    number of distinct values, not with the number of rows; items with many distinct values
    (more than one per :data:`_ROWS_PER_VALUE` rows) are resampled row by row.

    >>> bootstrap_ci([1.0, 1.0, 1.0])
    (1.0, 1.0)
    >>> low, high = bootstrap_ci([0.0, 1.0] * 50, seed=3)
    >>> low < 0.5 < high, bootstrap_ci([0.0, 1.0] * 50, seed=3) == (low, high)
    (True, True)
    """
    items = [float(v) for v in per_item]
    if not items:
        raise DataError("bootstrap_ci needs at least one item; got none")
    if not 0.0 < level < 1.0:
        raise ConfigError(f"bootstrap level must lie strictly between 0 and 1; got {level!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ConfigError(f"n_resamples must be a positive int; got {n_resamples!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an int; got {seed!r}")
    if all(v == items[0] for v in items):
        return (items[0], items[0])
    n = len(items)
    counts = Counter(items)
    if len(counts) * _ROWS_PER_VALUE <= n or len(counts) == 2:
        # Sorted so that the draws do not depend on the order of the rows. The interval
        # depends only on these counts, which repeat across a search's candidates (n rows of
        # 0/1 scores have n + 1 possible counts), so it is computed once per distinct key.
        values = tuple(sorted(counts.items()))
        signs = tuple(math.copysign(1.0, v) for v, _ in values)  # 0.0 == -0.0 as keys
        return _counted_ci(values, signs, n=n, level=level, n_resamples=n_resamples, seed=seed)
    rng = random.Random(seed)
    means = sorted(math.fsum(rng.choices(items, k=n)) / n for _ in range(n_resamples))
    return _quantiles(means, level, n_resamples)


def mean_interval(
    per_item: Sequence[float], level: float = 0.95, n_resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """The interval of the mean of ``per_item``: Wilson's when every item is 0 or 1, else
    :func:`bootstrap_ci`.

    0/1 items make the mean a share of rows (an accuracy), a binomial proportion, whose Wilson
    interval (:func:`sammo_core.stats.wilson_interval`) keeps its coverage on few rows and near
    0 or 1, where a bootstrap claims certainty: all four rows right resample to 1.0 every time.

    >>> [round(x, 3) for x in mean_interval([1.0, 1.0, 1.0, 1.0])]
    [0.51, 1.0]
    >>> mean_interval([0.5, 0.5])  # not 0/1: the bootstrap's
    (0.5, 0.5)
    """
    items = [float(v) for v in per_item]
    if not is_binary(items):
        return bootstrap_ci(items, level, n_resamples, seed)
    return wilson_interval(int(math.fsum(items)), len(items), level)


def paired_difference(
    a: Sequence[float],
    b: Sequence[float],
    level: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """The mean of ``a - b`` over the same items, with a paired bootstrap interval.

    ``a`` and ``b`` score the *same* rows (two programs on one test split); resampling the
    rows' differences keeps the pairing, so the interval is far narrower than two separate
    intervals when both programs get the same rows right. An interval that excludes 0 says
    the difference holds on rows like these.

    >>> winner = [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0] * 10
    >>> start = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0] * 10
    >>> diff, low, high = paired_difference(winner, start)
    >>> diff, low > 0
    (0.25, True)
    """
    if len(a) != len(b):
        raise DataError(f"paired scores need the same rows; got {len(a)} and {len(b)} items")
    diffs = [float(x) - float(y) for x, y in zip(a, b, strict=True)]
    low, high = bootstrap_ci(diffs, level, n_resamples, seed)
    return math.fsum(diffs) / len(diffs), low, high


@functools.lru_cache(maxsize=4096)
def _counted_ci(
    values: tuple[tuple[float, int], ...],
    signs: tuple[float, ...],  # part of the cache key only
    *,
    n: int,
    level: float,
    n_resamples: int,
    seed: int,
) -> tuple[float, float]:
    """:func:`bootstrap_ci` of items given as ``(value, count)`` pairs, sorted by value."""
    rng = random.Random(seed)
    means = sorted(_counted_mean(rng, values, n) for _ in range(n_resamples))
    return _quantiles(means, level, n_resamples)


def _quantiles(means: list[float], level: float, n_resamples: int) -> tuple[float, float]:
    """The ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of sorted ``means``."""
    tail = (1.0 - level) / 2.0
    low = means[min(n_resamples - 1, math.floor(tail * n_resamples))]
    high = means[max(0, math.ceil((1.0 - tail) * n_resamples) - 1)]
    return (low, high)


#: Below this many rows per distinct value, :func:`bootstrap_ci` resamples row by row.
_ROWS_PER_VALUE = 8


def _counted_mean(rng: random.Random, values: Sequence[tuple[float, int]], n: int) -> float:
    """The mean of one resample of ``n`` items, drawn as multinomial counts of ``values``.

    ``values`` pairs each distinct value with how often it occurs (summing to ``n``); each
    count is binomial given the counts drawn before it.
    """
    left, rest = n, n  # resample slots still to fill; items of the values not yet drawn
    parts: list[float] = []
    for value, count in values[:-1]:
        drawn = binomial(rng, left, count / rest)
        parts.append(drawn * value)
        left -= drawn
        rest -= count
    parts.append(left * values[-1][0])
    return math.fsum(parts) / n


def binomial(rng: random.Random, n: int, p: float) -> int:
    """One draw from Binomial(``n``, ``p``) using only ``rng.random()``: bit for bit reproducible.

    The algorithm of Python 3.12's ``random.binomialvariate`` (Devroye's geometric method when
    ``n * p < 10``, else Hörmann's BTRS), so draws match it for the same generator state and
    take O(1) expected time however large ``n`` is.

    >>> rng = random.Random(0)
    >>> draws = [binomial(rng, 1000, 0.25) for _ in range(2000)]
    >>> 245 < sum(draws) / len(draws) < 255, min(draws) >= 0, max(draws) <= 1000
    (True, True, True)
    >>> binomial(rng, 10, 0.0), binomial(rng, 10, 1.0)
    (0, 10)
    """
    if n < 0 or not 0.0 <= p <= 1.0:
        raise ConfigError(f"binomial needs n >= 0 and 0 <= p <= 1; got n={n!r}, p={p!r}")
    if p == 0.0:
        return 0
    if p == 1.0:
        return n
    random_ = rng.random
    if n == 1:
        return int(random_() < p)
    if p > 0.5:
        return n - binomial(rng, n, 1.0 - p)
    if n * p < 10.0:
        x = y = 0
        c = math.log2(1.0 - p)
        if not c:
            return x
        while True:
            y += math.floor(math.log2(random_()) / c) + 1
            if y > n:
                return x
            x += 1
    spq = math.sqrt(n * p * (1.0 - p))
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = n * p + 0.5
    vr = 0.92 - 4.2 / b
    setup = False
    alpha = lpq = h = 0.0
    m = 0
    while True:
        u = random_() - 0.5
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + c)
        if k < 0 or k > n:
            continue
        v = random_()
        if us >= 0.07 and v <= vr:
            return k
        if not setup:
            alpha = (2.83 + 5.1 / b) * spq
            lpq = math.log(p / (1.0 - p))
            m = math.floor((n + 1) * p)
            h = math.lgamma(m + 1) + math.lgamma(n - m + 1)
            setup = True
        v *= alpha / (a / (us * us) + b)
        if math.log(v) <= h - math.lgamma(k + 1) - math.lgamma(n - k + 1) + (k - m) * lpq:
            return k
