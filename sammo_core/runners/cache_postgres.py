"""A completion cache in PostgreSQL, shared by every process and machine that reaches the
database (``--cache postgresql://USER@HOST:PORT/DB``; the ``postgres`` extra, psycopg 3).

Rows are keyed as in the SQLite :class:`~sammo_core.runners.cache.Cache`
(:func:`~sammo_core.runners.cache.cache_key`: key version, endpoint, model, request) and live
in a table named after the key version (``sammo_completions_v2``), so a future key change
reads a new, empty table and misses rather than serving answers stored under other keys.
The first complete answer wins: a write is one ``INSERT ... ON CONFLICT DO NOTHING`` (atomic:
no partial entry), and a writer that lost the race reads the stored row back and returns it,
so every process answers alike. A ``search_path`` in the URL (``?options=-csearch_path%3Dx``)
puts the table in another schema.

psycopg is imported only here, on first use: without it, opening a PostgreSQL cache fails
with one line naming the extra. A URL's password is never printed (:func:`mask_url`).

>>> PostgresCache.table_name()
'sammo_completions_v2'
>>> PostgresCache("postgresql://sammo:s3cret@127.0.0.1:1/cache", mode="off")
PostgresCache('postgresql://***@127.0.0.1:1/cache', mode='off')
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from sammo_core.errors import ConfigError, RunnerError
from sammo_core.runners.base import LLMRequest, LLMResult
from sammo_core.runners.cache import KEY_VERSION, cache_key, stored_result
from sammo_core.runners.cache_store import (
    CacheMode,
    CacheRow,
    ClosesOnExit,
    check_mode,
    is_postgres_url,
    mask_url,
)

if TYPE_CHECKING:
    import psycopg

__all__ = ["CONNECT_TIMEOUT_S", "PostgresCache"]

#: Seconds to wait for the server when opening the cache.
CONNECT_TIMEOUT_S = 10
_TABLE_PREFIX = "sammo_completions_v"
_TABLE = f"{_TABLE_PREFIX}{KEY_VERSION}"
# One lock id for creating the table, so processes that open a new database together do not
# race on the catalog (CREATE TABLE IF NOT EXISTS alone can fail with a duplicate type).
_CREATE_LOCK = 0x5A33_0C4E
_URL_FORM = "postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE"
_T = TypeVar("_T")


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConfigError(
            "a postgresql:// cache needs psycopg 3: pip install 'sammo-core[postgres]'"
        ) from None
    return psycopg


def _one_line(exc: BaseException, url: str) -> str:
    """The driver's message on one line, with nothing of the password in it."""
    text = " ".join(str(exc).split())
    try:
        import urllib.parse

        password = urllib.parse.urlsplit(url).password
    except ValueError:
        password = None
    if password:
        text = text.replace(password, "***")
    return re.sub(r"password=\S+", "password=***", text)


class PostgresCache(ClosesOnExit):
    """A persistent map from (endpoint, model, request) to :class:`LLMResult`, in a table of a
    PostgreSQL database (created if missing, except in replay mode).

    Args:
        url: ``postgresql://`` (or ``postgres://``) URL in libpq's form; its password, if any,
            is used and never shown.
        mode: ``"readwrite"``, ``"replay"`` (reads only; the table must exist) or ``"off"``
            (connects to nothing).

    One connection per object (autocommit: each write is committed when :meth:`put`
    returns), guarded by a lock so many asyncio tasks or threads may share it. A connection
    lost mid-run is opened again once per statement (reads and these writes are safe to
    repeat); a server that stays away ends the run with a
    :class:`~sammo_core.errors.RunnerError` naming the masked URL.
    """

    def __init__(self, url: str, mode: CacheMode = "readwrite") -> None:
        self.mode: CacheMode = check_mode(mode)
        if not is_postgres_url(url):
            raise ConfigError(f"{mask_url(url)!r} is not a PostgreSQL URL; write it {_URL_FORM}")
        self.url = url
        self._location = mask_url(url)
        self.stale = False
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = False
        if mode == "off":
            return
        self._conn = self._connect()
        self._prepare()

    @staticmethod
    def table_name() -> str:
        """The table this version's keys live in."""
        return _TABLE

    @property
    def location(self) -> str:
        """The URL with its password masked."""
        return self._location

    def __repr__(self) -> str:
        return f"PostgresCache({self.location!r}, mode={self.mode!r})"

    @property
    def server_pid(self) -> int | None:
        """The server process that serves this connection (for measurements), if open."""
        with self._lock:
            return None if self._conn is None else int(self._conn.info.backend_pid)

    @property
    def hits(self) -> int:
        """Lookups that found an entry."""
        return self._hits

    @property
    def misses(self) -> int:
        """Lookups that found none (every lookup counts in ``"off"`` mode)."""
        return self._misses

    @property
    def closed(self) -> bool:
        return self._closed

    def _connect(self) -> psycopg.Connection[Any]:
        _psycopg()  # one line naming the extra when it is missing
        import psycopg

        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            raise ConfigError(
                f"cannot open the PostgreSQL cache {self.location}: "
                f"{_one_line(exc, self.url)}; start the server or fix the URL ({_URL_FORM})"
            ) from None
        return conn

    def _prepare(self) -> None:
        """Create the table (readwrite), check it is there (replay), and note older ones."""
        pg = _psycopg()
        conn = self._connection()
        try:
            tables = self._tables(conn)
            self.stale = any(
                conn.execute(f"SELECT EXISTS (SELECT 1 FROM {_TABLE_PREFIX}{v})").fetchone()
                == (True,)
                for v in tables
                if v < KEY_VERSION
            )
            if self.mode == "readwrite" and KEY_VERSION not in tables:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
                    conn.execute(
                        f"CREATE TABLE IF NOT EXISTS {_TABLE} (key TEXT PRIMARY KEY, "
                        "value BYTEA NOT NULL, created DOUBLE PRECISION NOT NULL)"
                    )
            elif self.mode == "replay" and KEY_VERSION not in tables:
                older = " (it holds tables of older key versions only)" if tables else ""
                raise ConfigError(
                    f"replay cache {self.location} has no table {_TABLE}{older}; run once "
                    "without --replay (mode='readwrite') to record it"
                )
        except pg.Error as exc:
            self.close()
            raise ConfigError(
                f"cannot use the PostgreSQL cache {self.location}: {_one_line(exc, self.url)}; "
                "the user needs CREATE on the schema (or the table made by one who has)"
            ) from None
        except ConfigError:
            self.close()
            raise

    @staticmethod
    def _tables(conn: psycopg.Connection[Any]) -> list[int]:
        """The key versions that have a cache table on the search path."""
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND c.relname LIKE %s "
            "AND pg_table_is_visible(c.oid)",
            (_TABLE_PREFIX + "%",),
        ).fetchall()
        suffixes = (str(name).removeprefix(_TABLE_PREFIX) for (name,) in rows)
        return sorted(int(suffix) for suffix in suffixes if suffix.isdigit())

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            raise ConfigError(f"cache {self.location} is closed; open a new PostgresCache")
        return self._conn

    def _run(self, work: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """``work(connection)`` under the lock; once more on a new connection if the first
        was lost (every statement here is safe to repeat)."""
        pg = _psycopg()
        with self._lock:
            conn = self._connection()
            try:
                return work(conn)
            except pg.OperationalError as first:
                if not conn.closed and conn.info.status == pg.pq.ConnStatus.OK:
                    raise RunnerError(
                        f"PostgreSQL cache {self.location}: {_one_line(first, self.url)}"
                    ) from None
                conn.close()
                self._conn = None
                try:
                    self._conn = self._connect()
                    return work(self._conn)
                except (pg.Error, ConfigError) as exc:
                    raise RunnerError(
                        f"lost the PostgreSQL cache {self.location} mid-run "
                        f"({_one_line(exc, self.url)}); the answers stored so far are kept: "
                        "start the server and run again"
                    ) from None

    def get(
        self, model: str, request: LLMRequest, *, endpoint: str | None = None
    ) -> LLMResult | None:
        """The stored result for ``request`` answered by ``model`` at ``endpoint``, or ``None``."""
        if self.mode == "off":
            with self._lock:
                self._misses += 1
            return None
        key = cache_key(model, request, endpoint=endpoint)
        row = self._run(
            lambda c: c.execute(f"SELECT value FROM {_TABLE} WHERE key = %s", (key,)).fetchone()
        )
        with self._lock:
            if row is None:
                self._misses += 1
                return None
            self._hits += 1
        return stored_result(row[0], self.location)

    def contains(self, model: str, request: LLMRequest, *, endpoint: str | None = None) -> bool:
        """Whether an entry is stored (without counting a hit or a miss)."""
        if self.mode == "off":
            return False
        key = cache_key(model, request, endpoint=endpoint)
        row = self._run(
            lambda c: c.execute(f"SELECT 1 FROM {_TABLE} WHERE key = %s", (key,)).fetchone()
        )
        return row is not None

    def put(
        self,
        model: str,
        request: LLMRequest,
        result: LLMResult,
        *,
        endpoint: str | None = None,
    ) -> LLMResult:
        """Store ``result`` unless an entry is stored already (committed before returning);
        the entry the table holds now. A no-op that returns ``result`` unless readwrite."""
        if self.mode != "readwrite":
            return result
        stored = dataclasses.replace(result, cached=False, overhead=(0, 0, 0))
        value = orjson.dumps(stored.to_dict())
        key = cache_key(model, request, endpoint=endpoint)

        def insert(conn: psycopg.Connection[Any]) -> Any:
            inserted = conn.execute(
                f"INSERT INTO {_TABLE} (key, value, created) VALUES (%s, %s, %s) "
                "ON CONFLICT (key) DO NOTHING RETURNING 1",
                (key, value, time.time()),
            ).fetchone()
            if inserted is not None:
                return None
            return conn.execute(f"SELECT value FROM {_TABLE} WHERE key = %s", (key,)).fetchone()

        row = self._run(insert)
        if row is None or bytes(row[0]) == value:
            return stored
        return stored_result(bytes(row[0]), self.location)

    def read_rows(self, after: str = "", limit: int = 1000) -> list[CacheRow]:
        """Up to ``limit`` rows of this key version's table with keys above ``after``, in key
        order."""
        if self.mode == "off":
            return []
        rows = self._run(
            lambda c: c.execute(
                f"SELECT key, value, created FROM {_TABLE} WHERE key > %s ORDER BY key LIMIT %s",
                (after, limit),
            ).fetchall()
        )
        return [(str(key), bytes(value), float(created)) for key, value, created in rows]

    def add_rows(self, rows: Iterable[CacheRow]) -> int:
        """Store ``rows`` (in one statement) whose keys are not stored yet; how many were new.
        Each value must read back as a stored reply."""
        if self.mode != "readwrite":
            raise ConfigError(f"cache {self.location} is open read-only (mode={self.mode!r})")
        keys, values, created = [], [], []
        for key, value, when in rows:
            stored_result(value, self.location)
            keys.append(key)
            values.append(value)
            created.append(when)
        if not keys:
            return 0

        def insert(conn: psycopg.Connection[Any]) -> int:
            cursor = conn.execute(
                f"INSERT INTO {_TABLE} (key, value, created) "
                "SELECT * FROM unnest(%s::text[], %s::bytea[], %s::float8[]) "
                "ON CONFLICT (key) DO NOTHING",
                (keys, values, created),
            )
            return int(cursor.rowcount)

        return self._run(insert)

    def rows_by_version(self) -> dict[int, int]:
        """``{key version: rows}`` of every cache table on the search path (exact counts)."""
        if self.mode == "off":
            return {}

        def count(conn: psycopg.Connection[Any]) -> dict[int, int]:
            counts = {}
            for version in self._tables(conn):
                table = f"{_TABLE_PREFIX}{version}"
                (rows,) = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone() or (0,)
                counts[version] = int(rows)
            return counts

        return self._run(count)

    def __len__(self) -> int:
        if self.mode == "off":
            return 0
        row = self._run(lambda c: c.execute(f"SELECT COUNT(*) FROM {_TABLE}").fetchone())
        return int(row[0]) if row is not None else 0

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None
