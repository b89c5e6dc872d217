"""A persistent completion cache (one SQLite file) and the runner wrapper that uses it.

:class:`Cache` maps a request (and the model and endpoint that answer it) to the stored
result. Every :meth:`Cache.put` commits at once, in WAL mode, so a run killed half way keeps
every completion it finished and the file stays valid; two processes may share one file.

Keys carry a version (:func:`cache_key`). Version 2 added the endpoint: files recorded with
version-1 keys (which let one model name at two servers share answers) are still opened, but
their entries never match, so they are re-recorded rather than served for the wrong server.

:class:`CachedRunner` wraps any :class:`~sammo_core.runners.base.Runner`: a hit returns the
stored result with ``cached=True`` (token counts kept, so accounting can report what was saved),
a miss calls the inner runner and stores the answer. Identical requests in flight at the same
time share one inner call.

>>> import asyncio, tempfile, pathlib
>>> from sammo_core.runners import LLMRequest, ScriptedRunner
>>> path = pathlib.Path(tempfile.mkdtemp()) / "cache.sqlite"
>>> inner = ScriptedRunner(default="Paris")
>>> with Cache(path) as cache:
...     runner = CachedRunner(inner, cache)
...     request = LLMRequest.from_prompt("Capital of France?")
...     first = asyncio.run(runner.generate(request))
...     second = asyncio.run(runner.generate(request))
...     (first.cached, second.cached, second.text, inner.calls, cache.hits, cache.misses)
(False, True, 'Paris', 1, 1, 1)
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import orjson

from sammo_core.errors import CacheMissError, ConfigError, DataError, RunnerError
from sammo_core.runners.base import (
    DEFAULT_MAX_REPLY_BYTES,
    LLMRequest,
    LLMResult,
    Runner,
    WrapperRunner,
)
from sammo_core.runners.cache_store import (
    CacheMode,
    CacheRow,
    CacheStore,
    ClosesOnExit,
    check_mode,
)

__all__ = ["Cache", "CacheMode", "CachedRunner", "cache_key", "stored_result"]

# Bump when the key payload changes, so old files miss instead of returning wrong answers.
# 2: the endpoint joined the key. Files record the version they were written with in SQLite's
# user_version, so a replay that misses can say why.
KEY_VERSION = 2
_BUSY_TIMEOUT_S = 30.0
#: The environment variable that sets how long a write waits for a cache another process locks.
BUSY_TIMEOUT_ENV = "SAMMO_CACHE_BUSY_TIMEOUT"
# How long one write waits for the file before its row is kept in memory for a later try.
_WRITE_WAIT_S = 0.25
_log = logging.getLogger(__name__)


def busy_timeout_from_env() -> float:
    """Seconds a write waits for a cache locked by another process: ``SAMMO_CACHE_BUSY_TIMEOUT``
    or 30.

    >>> import os
    >>> os.environ.get(BUSY_TIMEOUT_ENV) is None and busy_timeout_from_env() == 30.0
    True
    """
    raw = os.environ.get(BUSY_TIMEOUT_ENV)
    if raw is None or not raw.strip():
        return _BUSY_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ConfigError(f"{BUSY_TIMEOUT_ENV}={raw!r} is not a number of seconds >= 0; e.g. 30")
    return value


def _locked(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def cache_key(model: str, request: LLMRequest, *, endpoint: str | None = None) -> str:
    """The hex sha256 of a canonical JSON dump of the endpoint, the model name and the request.

    Everything that changes the answer is in it: where the model is served (``endpoint``, a
    base URL or a label several equivalent servers share; ``None`` for in-process models),
    the model name, messages, temperature, max_tokens, seed, stop and sample_index.

    >>> from sammo_core.runners import LLMRequest
    >>> a = cache_key("gpt-4o", LLMRequest.from_prompt("Hi"))
    >>> a == cache_key("gpt-4o", LLMRequest.from_prompt("Hi", temperature=0))
    True
    >>> a == cache_key("gpt-4o", LLMRequest.from_prompt("Hi", sample_index=1))
    False
    >>> hi = LLMRequest.from_prompt("Hi")
    >>> cache_key("llama3", hi, endpoint="http://a:8000/v1") == cache_key(
    ...     "llama3", hi, endpoint="http://b:8000/v1")
    False
    """
    payload = request.to_dict()
    # 0 and 0.0 are the same temperature; orjson would write them differently.
    payload["temperature"] = float(payload["temperature"])
    blob = orjson.dumps(
        {"v": KEY_VERSION, "endpoint": endpoint, "model": model, "request": payload},
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(blob).hexdigest()


def _setup(conn: sqlite3.Connection) -> None:
    """Switch to WAL and create the table, retrying while another connection does the same.

    Switching the journal mode of a file that another connection is creating can fail with
    "database is locked" at once, without waiting for the busy timeout.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    delay = 0.005
    while True:
        try:
            (journal,) = conn.execute("PRAGMA journal_mode").fetchone()
            if str(journal).lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            # In WAL mode, NORMAL survives a killed process (not a power cut) and is faster.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS completions "
                "(key TEXT PRIMARY KEY, value BLOB NOT NULL, created REAL NOT NULL)"
            )
            return
        except sqlite3.OperationalError as exc:
            if not _locked(exc):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


class Cache(ClosesOnExit):
    """A persistent map from (endpoint, model, request) to :class:`LLMResult`, in one SQLite file.

    Args:
        path: the SQLite file; created with its parent folders if missing.
        mode: ``"readwrite"`` reads and records; ``"replay"`` only reads (a
            :class:`CachedRunner` raises :class:`CacheMissError` on a miss); ``"off"`` neither
            reads nor writes and opens no file.

    Values hold ``LLMResult.to_dict()`` (text, token counts, model, cost) and nothing secret.
    The first complete answer stored for a key stays: :meth:`put` returns the entry the file
    holds, another process's if it stored one first. It keeps the
    :class:`~sammo_core.runners.cache_store.CacheStore` protocol, as
    :class:`~sammo_core.runners.cache_postgres.PostgresCache` does.
    ``stale`` says the file holds entries written with an older key version (they never match).
    One connection per object, guarded by a lock, so many asyncio tasks or threads may share
    it; other processes may open the same file.

    While another process holds the file locked, answers are kept in memory (and served from
    there) and written once it is free; the first such write says so on the
    ``sammo_core.runners.cache`` logger. After ``busy_timeout`` seconds (default: the
    ``SAMMO_CACHE_BUSY_TIMEOUT`` environment variable, else 30) of that, :meth:`put` writes the
    answers kept so far to ``PATH.pending-PID.jsonl`` beside the file and raises
    :class:`~sammo_core.errors.RunnerError`; the next :class:`Cache` that opens the file
    adds them to it, so no paid answer is lost. :meth:`close` does the same with what is left.

    >>> import tempfile, pathlib
    >>> from sammo_core.runners import LLMRequest, LLMResult
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "c.sqlite"
    >>> request = LLMRequest.from_prompt("Hi")
    >>> with Cache(path) as cache:
    ...     first = cache.put("m", request, LLMResult("Hello", 1, 1, model="m"))
    ...     later = cache.put("m", request, LLMResult("Hi there", 1, 2, model="m"))
    ...     (later.text, cache.get("m", request).text, cache.get("other", request), len(cache))
    ('Hello', 'Hello', None, 1)
    """

    def __init__(
        self, path: str | Path, mode: CacheMode = "readwrite", *, busy_timeout: float | None = None
    ) -> None:
        mode = check_mode(mode)
        if busy_timeout is None:
            busy_timeout = busy_timeout_from_env()
        if not 0 <= busy_timeout < float("inf"):
            raise ConfigError(f"busy_timeout must be a number of seconds >= 0; got {busy_timeout}")
        self.path = Path(path)
        self.mode: CacheMode = mode
        self.busy_timeout = busy_timeout
        self._pending: dict[str, tuple[bytes, float]] = {}  # rows a lock kept out of the file
        self._locked_since: float | None = None  # when a write first found the file locked
        self._spilled = 0  # answers written beside the file while it stayed locked
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._conn: sqlite3.Connection | None = None
        self.stale = False
        if mode == "off":
            return
        if mode == "replay" and not self.path.exists():
            raise ConfigError(
                f"replay cache {str(self.path)!r} does not exist; "
                "run once with mode='readwrite' to record it"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            _setup(conn)
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version < KEY_VERSION:
                (rows,) = conn.execute("SELECT EXISTS(SELECT 1 FROM completions)").fetchone()
                self.stale = bool(rows)
                if mode == "readwrite":
                    conn.execute(f"PRAGMA user_version = {KEY_VERSION}")
        except sqlite3.Error as exc:
            conn.close()
            raise ConfigError(f"cannot open cache file {str(self.path)!r}: {exc}") from exc
        conn.execute(f"PRAGMA busy_timeout = {int(_WRITE_WAIT_S * 1000)}")
        self._conn = conn
        if mode == "readwrite":
            self._adopt_spilled()

    def __repr__(self) -> str:
        return f"Cache({str(self.path)!r}, mode={self.mode!r})"

    @property
    def location(self) -> str:
        """The file, for messages."""
        return str(self.path)

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
        return self._conn is None and self.mode != "off"

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ConfigError(f"cache {str(self.path)!r} is closed; open a new Cache")
        return self._conn

    def get(
        self, model: str, request: LLMRequest, *, endpoint: str | None = None
    ) -> LLMResult | None:
        """The stored result for ``request`` answered by ``model`` at ``endpoint``, or ``None``."""
        if self.mode == "off":
            with self._lock:
                self._misses += 1
            return None
        key = cache_key(model, request, endpoint=endpoint)
        with self._lock:
            kept = self._pending.get(key)
            row = (
                (kept[0],)
                if kept is not None
                else self._connection()
                .execute("SELECT value FROM completions WHERE key = ?", (key,))
                .fetchone()
            )
            if row is None:
                self._misses += 1
                return None
            self._hits += 1
        return stored_result(row[0], self.path)

    def contains(self, model: str, request: LLMRequest, *, endpoint: str | None = None) -> bool:
        """Whether an entry is stored (without counting a hit or a miss)."""
        if self.mode == "off":
            return False
        key = cache_key(model, request, endpoint=endpoint)
        with self._lock:
            if key in self._pending:
                return True
            row = (
                self._connection()
                .execute("SELECT 1 FROM completions WHERE key = ?", (key,))
                .fetchone()
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
        """Store ``result`` (committed before returning, unless another process locks the file:
        see the class) unless an entry is stored already: the first complete answer stays.
        Returns the entry the file holds now (``result`` as stored, or the earlier one); a
        no-op that returns ``result`` unless mode is readwrite."""
        if self.mode != "readwrite":
            return result
        # The runner's own overhead (a one-off probe) belongs to the run that paid it, not to
        # the answer a hit stands for.
        stored = dataclasses.replace(result, cached=False, overhead=(0, 0, 0))
        value = orjson.dumps(stored.to_dict())
        key = cache_key(model, request, endpoint=endpoint)
        with self._lock:
            self._connection()
            self._pending[key] = (value, time.time())
            gave_up = self._locked_since is not None and (
                time.monotonic() - self._locked_since >= self.busy_timeout
            )
            if not gave_up and self._flush():  # having given up, it waits no more
                row = (
                    self._connection()
                    .execute("SELECT value FROM completions WHERE key = ?", (key,))
                    .fetchone()
                )
                return (
                    stored if row is None or row[0] == value else stored_result(row[0], self.path)
                )
            now = time.monotonic()
            if self._locked_since is None:
                self._locked_since = now
                _log.warning(
                    "cache %s is locked by another process; keeping answers in memory and "
                    "waiting up to %g s (%s) for it",
                    self.path,
                    self.busy_timeout,
                    BUSY_TIMEOUT_ENV,
                )
            if now - self._locked_since < self.busy_timeout:
                return stored
            target = self._spill()
        raise RunnerError(
            f"cache {str(self.path)!r} stayed locked by another process for "
            f"{self.busy_timeout:g} s; the answers paid but not in it ({self._spilled} so far) "
            f"go to {str(target)!r} and join the cache when it next opens. Stop the "
            f"other process, or use another --cache (or raise {BUSY_TIMEOUT_ENV})"
        )

    def _flush(self) -> bool:
        """Write the rows kept in memory in one transaction; ``False`` while the file is locked.
        (Called with ``self._lock`` held.)"""
        if not self._pending:
            return True
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT OR IGNORE INTO completions (key, value, created) VALUES (?, ?, ?)",
                    [(key, value, created) for key, (value, created) in self._pending.items()],
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            if not _locked(exc):
                raise
            return False
        self._pending.clear()
        if self._locked_since is not None:
            self._locked_since = None
            _log.warning("cache %s is free again; the answers kept in memory are in it", self.path)
        return True

    def _spill(self) -> Path:
        """Append the rows kept in memory to this process's file beside the cache (read back
        by the next :class:`Cache` that opens the file). (Called with ``self._lock`` held.)"""
        target = self.path.with_name(f"{self.path.name}.pending-{os.getpid()}.jsonl")
        with target.open("ab") as f:
            for key, (value, created) in self._pending.items():
                line = {"key": key, "value": value.decode(), "created": created}
                f.write(orjson.dumps(line) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        self._spilled += len(self._pending)
        self._pending.clear()
        return target

    def _adopt_spilled(self) -> None:
        """Add the answers a process that found the file locked wrote beside it."""
        for spilled in sorted(self.path.parent.glob(f"{self.path.name}.pending-*.jsonl")):
            try:
                rows = [orjson.loads(line) for line in spilled.read_bytes().splitlines() if line]
                with self._lock:
                    for row in rows:
                        value = orjson.dumps(orjson.loads(row["value"]))
                        self._pending[str(row["key"])] = (value, float(row["created"]))
                    if not self._flush():
                        continue  # still locked: the file stays for a later open
                spilled.unlink(missing_ok=True)
            except (OSError, ValueError, KeyError, TypeError):
                continue  # unreadable or half-written: left where it is

    def __len__(self) -> int:
        if self.mode == "off":
            return 0
        with self._lock:
            (count,) = self._connection().execute("SELECT COUNT(*) FROM completions").fetchone()
        return int(count)

    def read_rows(self, after: str = "", limit: int = 1000) -> list[CacheRow]:
        """Up to ``limit`` stored rows with keys above ``after``, in key order (a file keeps
        the rows of older key versions in the same table: they come along, and never match).

        >>> from sammo_core.runners import LLMRequest, LLMResult
        >>> with Cache(":memory:") as cache:
        ...     stored = cache.put("m", LLMRequest.from_prompt("Hi"), LLMResult("Hello"))
        ...     [(len(key), orjson.loads(value)["text"]) for key, value, _ in cache.read_rows()]
        [(64, 'Hello')]
        """
        if self.mode == "off":
            return []
        with self._lock:
            rows = (
                self._connection()
                .execute(
                    "SELECT key, value, created FROM completions WHERE key > ? "
                    "ORDER BY key LIMIT ?",
                    (after, limit),
                )
                .fetchall()
            )
        return [(str(key), bytes(value), float(created)) for key, value, created in rows]

    def add_rows(self, rows: Iterable[CacheRow]) -> int:
        """Store ``rows`` (in one transaction) whose keys are not stored yet; how many were
        new. Each value must read back as a stored reply."""
        if self.mode != "readwrite":
            raise ConfigError(f"cache {str(self.path)!r} is open read-only (mode={self.mode!r})")
        checked = []
        for key, value, created in rows:
            stored_result(value, self.path)
            checked.append((key, value, created))
        with self._lock:
            conn = self._connection()
            before = conn.total_changes
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT OR IGNORE INTO completions (key, value, created) VALUES (?, ?, ?)",
                    checked,
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return conn.total_changes - before

    def rows_by_version(self) -> dict[int, int]:
        """``{version: rows}``: a file records one key version (the newest that wrote to
        it), and ``stale`` says that older ones wrote rows too."""
        if self.mode == "off":
            return {}
        with self._lock:
            (version,) = self._connection().execute("PRAGMA user_version").fetchone()
        return {int(version): len(self)}

    def close(self) -> None:
        """Close the file (answers still kept from a locked file go beside it: see the class);
        safe to call twice."""
        with self._lock:
            if self._conn is not None:
                if self._pending and not self._flush():
                    deadline = (self._locked_since or time.monotonic()) + self.busy_timeout
                    while time.monotonic() < deadline and not self._flush():
                        time.sleep(0.05)
                    if self._pending:
                        count = len(self._pending)
                        _log.warning(
                            "cache %s stayed locked; %d answers were written to %s and join "
                            "the cache when it next opens",
                            self.path,
                            count,
                            self._spill(),
                        )
                self._conn.close()
                self._conn = None


@dataclasses.dataclass
class _InFlight:
    task: asyncio.Task[LLMResult]
    waiters: int = 0


class CachedRunner(WrapperRunner):
    """Serves requests from a :class:`Cache`, calling ``inner`` only on a miss.

    A hit returns the stored result with ``cached=True``; so does a request that joined an
    identical one already in flight (``deduplicated`` counts those). Keys include
    ``inner.model`` and the ``endpoint`` (default ``inner.endpoint``, e.g. an
    :class:`~sammo_core.runners.OpenAIRunner`'s base URL), so one file may serve several
    models and servers without mixing their answers. Pass one ``endpoint`` label to the
    runners of equivalent servers (replicas of the same weights) to let them share entries.
    Wrap the backend itself (as :func:`~sammo_core.runners.build_runner` does): wrappers
    between them do not pass ``endpoint`` through. Reply text beyond
    ``max_reply_bytes`` UTF-8 bytes is cut before it is stored (``LLMResult.truncated``), and the
    caller gets the same cut result as a later hit would; ``None`` stores every byte.

    >>> import asyncio, tempfile, pathlib
    >>> from sammo_core.runners import LLMRequest, ScriptedRunner
    >>> inner = ScriptedRunner(default="42", latency=0.01)
    >>> runner = CachedRunner(inner, Cache(pathlib.Path(tempfile.mkdtemp()) / "c.sqlite"))
    >>> request = LLMRequest.from_prompt("6 x 7?")
    >>> results = asyncio.run(runner.generate_many([request] * 3))
    >>> ([r.cached for r in results], inner.calls, runner.deduplicated)
    ([False, True, True], 1, 2)
    >>> runner.cache.close()
    """

    def __init__(
        self,
        inner: Runner,
        cache: CacheStore,
        max_reply_bytes: int | None = DEFAULT_MAX_REPLY_BYTES,
        *,
        endpoint: str | None = None,
    ) -> None:
        if max_reply_bytes is not None and max_reply_bytes < 1:
            raise ConfigError(f"max_reply_bytes must be >= 1 or None; got {max_reply_bytes}")
        super().__init__(inner)
        self.cache = cache
        self.max_reply_bytes = max_reply_bytes
        self._endpoint = endpoint
        self.deduplicated = 0
        self._inflight: dict[str, _InFlight] = {}

    @property
    def endpoint(self) -> str | None:
        """The endpoint in the cache keys: the label given, else the inner runner's."""
        return self._endpoint if self._endpoint is not None else self.inner.endpoint

    @endpoint.setter
    def endpoint(self, value: str | None) -> None:
        raise AttributeError("CachedRunner.endpoint is set once: CachedRunner(..., endpoint=...)")

    def __repr__(self) -> str:
        return f"CachedRunner({self.inner!r}, {self.cache!r}, endpoint={self.endpoint!r})"

    def will_hit(self, request: LLMRequest) -> bool:
        """Whether :meth:`generate` would answer without calling the inner runner right now.

        Budget wrappers use it to let cache hits through a budget that is used up.
        """
        model, endpoint = self.inner.model, self.endpoint
        key = cache_key(model, request, endpoint=endpoint)
        return key in self._inflight or self.cache.contains(model, request, endpoint=endpoint)

    async def generate(self, request: LLMRequest) -> LLMResult:
        model, endpoint = self.inner.model, self.endpoint
        key = cache_key(model, request, endpoint=endpoint)
        # No await between the in-flight check and the registration: the check is atomic.
        entry = self._inflight.get(key)
        leader = entry is None
        if entry is None:
            stored = self.cache.get(model, request, endpoint=endpoint)
            if stored is not None:  # the cap holds for replies stored before it, or without it
                return dataclasses.replace(stored.capped(self.max_reply_bytes), cached=True)
            if self.cache.mode == "replay":
                where = f" at {endpoint}" if endpoint is not None else ""
                stale = (
                    " (the file was recorded by an older version whose keys lack the endpoint;"
                    " its entries no longer match)"
                    if self.cache.stale
                    else ""
                )
                raise CacheMissError(
                    f"replay-only cache {self.cache.location!r} has no entry for model "
                    f"{model!r}{where} and the prompt starting {request.prompt_text[:80]!r}"
                    f"{stale}; run once with mode='readwrite' to record it"
                )
            entry = _InFlight(asyncio.ensure_future(self._fetch(key, request)))
            self._inflight[key] = entry
        else:
            self.deduplicated += 1
        entry.waiters += 1
        try:
            # shield: one waiter's cancellation must not cancel the call the others share.
            result = await asyncio.shield(entry.task)
        except asyncio.CancelledError:
            if entry.waiters == 1 and not entry.task.done():
                entry.task.cancel()
            raise
        finally:
            entry.waiters -= 1
        return result if leader else dataclasses.replace(result, cached=True)

    async def _fetch(self, key: str, request: LLMRequest) -> LLMResult:
        try:
            result = (await self.inner.generate(request)).capped(self.max_reply_bytes)
            held = self.cache.put(self.inner.model, request, result, endpoint=self.endpoint)
            return same_answer(result, held.capped(self.max_reply_bytes))
        finally:
            self._inflight.pop(key, None)

    def planned_calls(self, request: LLMRequest) -> tuple[LLMRequest, ...]:
        """The inner runner's calls for ``request`` (on a miss; a hit makes none)."""
        return self.inner.planned_calls(request)

    async def aclose(self) -> None:
        """Close the inner runner (the cache stays open; close it yourself)."""
        await self.inner.aclose()


_RESULT_TYPES: dict[str, type | tuple[type, ...]] = {
    "text": str,
    "prompt_tokens": int,
    "completion_tokens": int,
    "model": str,
    "cached": bool,
    "cost_usd": (int, float),
    "truncated": bool,
    "label_logprobs": list,
    "calls": int,
    "overhead": list,
}


def same_answer(paid: LLMResult, held: LLMResult) -> LLMResult:
    """``paid`` (the call this process made) answering as ``held`` (the entry a cache kept,
    another writer's when it stored one first), so that every process returns the same
    answer; the counts stay what this call spent.

    >>> paid = LLMResult("Lyon", 5, 2, overhead=(1, 0, 0))
    >>> same = same_answer(paid, LLMResult("Paris", 5, 1))
    >>> (same.text, same.completion_tokens, same.overhead)
    ('Paris', 2, (1, 0, 0))
    """
    if (held.text, held.truncated, held.label_logprobs, held.cut_off) == (
        paid.text,
        paid.truncated,
        paid.label_logprobs,
        paid.cut_off,
    ):
        return paid
    return dataclasses.replace(
        paid,
        text=held.text,
        truncated=held.truncated,
        label_logprobs=held.label_logprobs,
        cut_off=held.cut_off,
    )


def stored_result(value: bytes | str, path: Path | str) -> LLMResult:
    """The :class:`LLMResult` a cache row holds, every field checked, or a
    :class:`~sammo_core.errors.DataError` naming the cache file (a row edited or damaged).

    >>> stored_result(b'{"text": "yes", "prompt_tokens": 3}', Path("c.sqlite")).text
    'yes'
    >>> stored_result(b"[1]", Path("c.sqlite"))
    Traceback (most recent call last):
    ...
    sammo_core.errors.DataError: cache c.sqlite holds an entry that is not a stored reply \
(a JSON object with text, tokens...; got list); delete the file (or the entry) to record it again
    """
    try:
        data = orjson.loads(value)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise _bad_row(path, f"not JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise _bad_row(path, f"a JSON object with text, tokens...; got {type(data).__name__}")
    for name, kind in _RESULT_TYPES.items():
        if name in data and not isinstance(data[name], kind):
            raise _bad_row(path, f"{name} is {str(data[name])[:40]!r}")
    for name in ("prompt_tokens", "completion_tokens", "calls"):
        if isinstance(data.get(name), bool) or not 0 <= data.get(name, 0) < 2**63:
            raise _bad_row(path, f"{name} is {data[name]!r}")
    numbers = [*data.get("label_logprobs", ()), *data.get("overhead", ())]
    if len(data.get("overhead", (0, 0, 0))) != 3 or not all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in numbers
    ):
        raise _bad_row(path, "label_logprobs or overhead is not a list of numbers")
    try:
        return LLMResult.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise _bad_row(path, str(exc)) from exc


def _bad_row(path: Path | str, why: str) -> DataError:
    return DataError(
        f"cache {path} holds an entry that is not a stored reply ({why}); delete the file (or "
        "the entry) to record it again"
    )
