"""Exact-match scoring of FunQL programs (``rag-parsing``): both sides normalised first."""

from __future__ import annotations

import re
from typing import Any

_FENCE = re.compile(r"^\s*```[\w-]*\s*$")
_QUOTES = str.maketrans({'"': "'", "`": "'", "\u2018": "'", "\u2019": "'", "\u201c": "'"})
_SPACE_AROUND = re.compile(r"\s*([(),])\s*")


def normalize_funql(value: Any) -> str:
    """A FunQL program in canonical form, for exact-match scoring.

    Takes the first line that is not a code fence, writes every quote as ``'``, removes the
    spaces around parentheses and commas, collapses other whitespace and strips the ends (a
    trailing period is dropped). Case is kept: FunQL is case-sensitive in principle.

    >>> normalize_funql('answer( population_1( cityid("austin", "tx") ) )')
    "answer(population_1(cityid('austin','tx')))"
    >>> normalize_funql("```\\nanswer(state(all))\\n```") == normalize_funql("answer(state(all)).")
    True
    >>> normalize_funql(None)
    ''
    """
    if value is None:
        return ""
    lines = [line for line in str(value).splitlines() if line.strip() and not _FENCE.match(line)]
    text = lines[0] if lines else ""
    text = text.translate(_QUOTES).replace("\u201d", "'")
    text = _SPACE_AROUND.sub(r"\1", " ".join(text.split()))
    return text.strip().rstrip(".").strip()


def funql_match(prediction: Any, gold: Any) -> float:
    """1.0 when the normalized programs are equal (:func:`normalize_funql`), else 0.0.

    >>> funql_match("answer(river( all ))", "answer(river(all))")
    1.0
    """
    return float(normalize_funql(prediction) == normalize_funql(gold))
