"""How a report writes a score: ``value [low, high]``, or the value alone without an interval.

Shared by :mod:`benchmarks.report` and :mod:`benchmarks.seeds` (which the report draws on), so
that neither imports the other to format a score.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["format_score"]


def format_score(score: Mapping[str, Any] | None) -> str:
    """``value [low, high]`` of a score dict (``Score.to_dict()``), or ``-`` when missing.

    >>> format_score({"value": 0.74, "ci_low": 0.65, "ci_high": 0.82})
    '0.740 [0.650, 0.820]'
    >>> format_score({"value": 12.0, "ci_low": None, "ci_high": None}), format_score(None)
    ('12', '-')
    """
    if not score:
        return "-"
    value = float(score["value"])
    if score.get("ci_low") is None or score.get("ci_high") is None:
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return f"{value:.3f} [{float(score['ci_low']):.3f}, {float(score['ci_high']):.3f}]"
