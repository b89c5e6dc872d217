"""BM25 retrieval of similar examples (pure Python; no index download, deterministic).

>>> from sammo_core.data import DataTable
>>> table = DataTable(["how tall is the eiffel tower", "capital of texas", "rivers in texas"])
>>> index = BM25Index.for_table(table)
>>> index.top_k(["which rivers run through texas"], 1)
[2]
"""

from __future__ import annotations

import math
import re
import weakref
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson

from sammo_core.data import DataTable

__all__ = ["BM25Index", "tokenize"]

_WORD = re.compile(r"\w+", re.UNICODE)
_INDEXES: weakref.WeakKeyDictionary[DataTable, BM25Index] = weakref.WeakKeyDictionary()


def tokenize(value: Any) -> list[str]:
    """Lower-cased word tokens of a string, or of a JSON-like value's text."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return _WORD.findall(text.lower())


class BM25Index:
    """Okapi BM25 over the inputs of a data table (k1=1.5, b=0.75)."""

    def __init__(self, documents: Sequence[Any], k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self._docs = [Counter(tokenize(d)) for d in documents]
        self._lengths = [sum(d.values()) for d in self._docs]
        self._avg = (sum(self._lengths) / len(self._docs)) if self._docs else 0.0
        df: Counter[str] = Counter()
        for doc in self._docs:
            df.update(doc.keys())
        n = len(self._docs)
        self._idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    @classmethod
    def for_table(cls, table: DataTable) -> BM25Index:
        """The index of ``table``'s inputs, built once per table object."""
        index = _INDEXES.get(table)
        if index is None:
            index = _INDEXES[table] = cls(table.inputs)
        return index

    def scores(self, query: Sequence[Any]) -> list[float]:
        terms = [t for q in query for t in tokenize(q)]
        out = []
        for doc, length in zip(self._docs, self._lengths, strict=True):
            norm = self.k1 * (1 - self.b + self.b * length / (self._avg or 1.0))
            s = 0.0
            for t in terms:
                f = doc.get(t, 0)
                if f:
                    s += self._idf[t] * f * (self.k1 + 1) / (f + norm)
            out.append(s)
        return out

    def top_k(self, query: Sequence[Any], k: int) -> list[int]:
        """Indices of the ``k`` best rows, best first; ties keep table order."""
        scores = self.scores(query)
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return order[:k]
