"""The cache a ``--cache`` names: :func:`open_cache` (a SQLite file or a PostgreSQL database)."""

from __future__ import annotations

from pathlib import Path

from sammo_core.runners.cache_store import CacheStore, check_mode, is_postgres_url

__all__ = ["open_cache"]


def open_cache(target: str | Path, mode: str = "readwrite") -> CacheStore:
    """The store ``target`` names: a PostgreSQL database for a ``postgresql://`` URL (needs
    the ``postgres`` extra), else a SQLite file."""
    from sammo_core.runners.cache import Cache

    checked = check_mode(mode)
    if is_postgres_url(target):
        from sammo_core.runners.cache_postgres import PostgresCache

        return PostgresCache(str(target), mode=checked)
    return Cache(target, mode=checked)
