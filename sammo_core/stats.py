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
import math
import statistics
from collections.abc import Sequence
from typing import Any, Literal

from sammo_core.errors import ConfigError, DataError
from sammo_core.objectives import paired_difference

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
