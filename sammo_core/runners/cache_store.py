"""The protocol every completion cache keeps, and what names one (a path or a URL).

A :class:`CacheStore` maps a request (and the model and endpoint that answer it) to the stored
result. Two stores keep it: :class:`~sammo_core.runners.cache.Cache` (one SQLite file, the
embedded default) and :class:`~sammo_core.runners.cache_postgres.PostgresCache` (a table in a
PostgreSQL database that many processes and machines share; the ``postgres`` extra).
:class:`~sammo_core.runners.cache.CachedRunner` takes either. Both key rows alike
(:func:`~sammo_core.runners.cache.cache_key`: key version, endpoint, model, request), so
``sammo-core cache copy`` moves rows between them unchanged, and both keep the first complete
answer stored for a key: :meth:`CacheStore.put` returns the answer the store holds, which is
another writer's when it stored one first.

:func:`~sammo_core.runners.cache_open.open_cache` picks the store from its target:

>>> import tempfile, pathlib
>>> from sammo_core.runners.cache_open import open_cache
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with open_cache(folder / "c.sqlite") as store:
...     (type(store).__name__, isinstance(store, CacheStore), len(store))
('Cache', True, 0)
>>> is_postgres_url("postgresql://sammo@db:5432/cache"), is_postgres_url("cache.sqlite")
(True, False)
>>> mask_url("postgresql://sammo:s3cret@db:5432/cache?sslmode=require&password=s3cret")
'postgresql://***@db:5432/cache?sslmode=require&password=***'
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol, Self, cast, get_args, runtime_checkable

from sammo_core.errors import ConfigError
from sammo_core.runners.base import LLMRequest, LLMResult

__all__ = [
    "POSTGRES_SCHEMES",
    "CacheMode",
    "CacheRow",
    "CacheStore",
    "ClosesOnExit",
    "check_mode",
    "is_postgres_url",
    "mask_url",
]

CacheMode = Literal["readwrite", "replay", "off"]
_MODES: tuple[str, ...] = get_args(CacheMode)

#: The URL schemes that name a PostgreSQL cache.
POSTGRES_SCHEMES = ("postgresql", "postgres")
#: One stored entry as it is copied between stores: key, value (``LLMResult`` JSON), created
#: (seconds since the epoch).
CacheRow = tuple[str, bytes, float]


class ClosesOnExit:
    """What the stores share as context managers: ``with store:`` closes it on the way out."""

    def close(self) -> None:
        raise NotImplementedError  # pragma: no cover -- each store closes its own connection

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@runtime_checkable
class CacheStore(Protocol):
    """What :class:`~sammo_core.runners.cache.CachedRunner` and ``sammo-core cache`` use.

    ``mode`` is ``"readwrite"``, ``"replay"`` (reads only; a runner raises
    :class:`~sammo_core.errors.CacheMissError` on a miss) or ``"off"``. ``location`` names the
    store for messages (a path, or a URL with its password masked). ``stale`` says the store
    holds entries written with an older key version, which never match.
    """

    @property
    def mode(self) -> CacheMode: ...

    @property
    def stale(self) -> bool: ...

    @property
    def location(self) -> str: ...

    @property
    def hits(self) -> int: ...

    @property
    def misses(self) -> int: ...

    def get(
        self, model: str, request: LLMRequest, *, endpoint: str | None = None
    ) -> LLMResult | None:
        """The stored result, or ``None`` (counted as a hit or a miss)."""
        ...

    def contains(self, model: str, request: LLMRequest, *, endpoint: str | None = None) -> bool:
        """Whether an entry is stored (counted neither way)."""
        ...

    def put(
        self, model: str, request: LLMRequest, result: LLMResult, *, endpoint: str | None = None
    ) -> LLMResult:
        """Store ``result`` unless an entry is there already; the entry the store holds now."""
        ...

    def read_rows(self, after: str = "", limit: int = 1000) -> Sequence[CacheRow]:
        """Up to ``limit`` stored rows of the current key version, keys above ``after``, in
        key order."""
        ...

    def add_rows(self, rows: Iterable[CacheRow]) -> int:
        """Store rows whose keys are not stored yet; how many were new."""
        ...

    def rows_by_version(self) -> dict[int, int]:
        """How many rows each key version wrote (as far as the store can tell)."""
        ...

    def __len__(self) -> int: ...

    def close(self) -> None: ...

    def __enter__(self) -> CacheStore: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def check_mode(mode: str) -> CacheMode:
    """``mode`` if it is a :data:`CacheMode`, else a :class:`~sammo_core.errors.ConfigError`.

    >>> check_mode("replay")
    'replay'
    >>> check_mode("read")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: cache mode 'read' is not one of readwrite, replay, off
    """
    if mode in _MODES:
        return cast(CacheMode, mode)
    raise ConfigError(f"cache mode {mode!r} is not one of {', '.join(_MODES)}")


def is_postgres_url(target: str | Path) -> bool:
    """Whether ``target`` is a ``postgresql://`` (or ``postgres://``) URL, not a file path."""
    if isinstance(target, Path):
        return False
    scheme, sep, _ = target.partition("://")
    return bool(sep) and scheme.lower() in POSTGRES_SCHEMES


def mask_url(url: str) -> str:
    """``url`` with its password (before the host, or a ``password=`` parameter) shown as
    ``***``, so that it can be printed. A user name alone is kept."""
    try:
        parts = urllib.parse.urlsplit(url)
        has_password = parts.password is not None
    except ValueError:
        return "<a URL that does not parse>"
    netloc = parts.netloc
    if has_password:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = "&".join(
        "password=***" if pair.split("=", 1)[0].lower() == "password" else pair
        for pair in parts.query.split("&")
    )
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))
