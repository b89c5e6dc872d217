"""The PostgreSQL cache on a real server: the runner stack round trip, replay, racing writer
processes, a lost connection, versioned tables, and the one-line errors."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

from sammo_core.errors import CacheMissError, ConfigError
from sammo_core.runners import (
    Cache,
    CachedRunner,
    CacheStore,
    LLMRequest,
    LLMResult,
    PostgresCache,
    ScriptedRunner,
    build_runner,
    cache_key,
)
from sammo_core.testing.chat_server import ChatServer
from sammo_core.tokens import count_tokens

ROOT = Path(__file__).parents[2]


def _requests(n: int) -> list[LLMRequest]:
    return [LLMRequest.from_prompt(f"What is {i} + {i}?") for i in range(n)]


def _run_stack(server: ChatServer, url: str, mode: str = "readwrite") -> tuple[list[str], int]:
    """Texts of the ten requests through build_runner's stack, and the cache's hits."""

    async def go() -> tuple[list[str], int]:
        stack = build_runner(
            "loopback",
            base_url=server.base_url,
            cache=url,
            cache_mode=mode,  # type: ignore[arg-type]
            timeout=5,
        )
        try:
            results = await stack.runner.generate_many(_requests(10))
            assert stack.cache is not None
            return [r.text for r in results], stack.cache.hits
        finally:
            await stack.aclose()

    return asyncio.run(go())


def test_second_run_makes_no_server_requests_and_replay_none(pg_url: str) -> None:
    with ChatServer() as server:
        first, hits = _run_stack(server, pg_url)
        assert (server.stats().completions, hits) == (10, 0)
        second, hits = _run_stack(server, pg_url)
        assert (server.stats().completions, hits) == (10, 10)  # the server's own count
        replayed, hits = _run_stack(server, pg_url, "replay")
        assert (server.stats().completions, hits) == (10, 10)
    assert second == first == replayed
    assert first[3] == "echo: What is 3 + 3?"  # the loopback server echoes


def test_replay_miss_fails_and_names_the_masked_url(pg_url: str, postgres: object) -> None:
    with PostgresCache(pg_url) as cache:  # creates the table, stores nothing
        assert len(cache) == 0
    secret = pg_url.replace("postgres@", "postgres:s3cret@")
    inner = ScriptedRunner(default="never", model="m")
    with PostgresCache(secret, mode="replay") as cache:
        runner = CachedRunner(inner, cache)
        with pytest.raises(CacheMissError) as info:
            asyncio.run(runner.generate(LLMRequest.from_prompt("Capital of Peru?")))
    assert inner.calls == 0
    assert "s3cret" not in str(info.value) and "postgresql://***@127.0.0.1" in str(info.value)
    assert "'Capital of Peru?'" in str(info.value)


def test_replay_of_a_database_without_the_table_is_refused(pg_url: str) -> None:
    with pytest.raises(ConfigError, match="has no table sammo_completions_v2; run once without"):
        PostgresCache(pg_url, mode="replay")


def test_same_keys_and_answers_as_the_sqlite_cache(pg_url: str, tmp_path: Path) -> None:
    request = LLMRequest.from_prompt("Hi", temperature=0.5, sample_index=2)
    result = LLMResult("Hello", 3, 1, model="m", label_logprobs=(-0.25, -3.5), overhead=(1, 2, 3))
    with PostgresCache(pg_url) as pg, Cache(tmp_path / "c.sqlite") as lite:
        stores: list[CacheStore] = [pg, lite]
        for store in stores:
            assert isinstance(store, CacheStore)
            held = store.put("m", request, result, endpoint="http://a/v1")
            assert held.text == "Hello" and held.overhead == (0, 0, 0)
        # The same key and the same stored bytes in both.
        assert [r[:2] for r in pg.read_rows()] == [r[:2] for r in lite.read_rows()]
        assert pg.read_rows()[0][0] == cache_key("m", request, endpoint="http://a/v1")
        assert pg.get("m", request, endpoint="http://a/v1") == lite.get(
            "m", request, endpoint="http://a/v1"
        )
        assert pg.get("m", request, endpoint="http://b/v1") is None  # the endpoint is keyed
        assert (pg.hits, pg.misses) == (1, 1)
        assert pg.contains("m", request, endpoint="http://a/v1")
        assert (pg.hits, pg.misses) == (1, 1)


def test_the_first_answer_stays(pg_url: str) -> None:
    request = LLMRequest.from_prompt("Capital of France?")
    with PostgresCache(pg_url) as cache:
        assert cache.put("m", request, LLMResult("Paris", 4, 1)).text == "Paris"
        later = cache.put("m", request, LLMResult("Lyon", 4, 1))
        assert later.text == "Paris" and len(cache) == 1
        assert cache.get("m", request) == LLMResult("Paris", 4, 1)


def test_a_runner_that_lost_the_race_returns_the_stored_answer(pg_url: str) -> None:
    request = LLMRequest.from_prompt("Capital of Peru?")
    with PostgresCache(pg_url) as other, PostgresCache(pg_url) as cache:

        def answer(asked: LLMRequest) -> str:
            # Another process stores its answer while this one waits for the model.
            _ = other.put("m", asked, LLMResult("Lima", 4, 99, model="m"), endpoint=None)
            return "Cusco"

        inner = ScriptedRunner(rules={"Peru": answer}, model="m")
        result = asyncio.run(CachedRunner(inner, cache).generate(request))
        assert cache.get("m", request) == LLMResult("Lima", 4, 99, model="m")
    # The stored answer, with what this call spent (a call paid, not a hit).
    assert (result.text, result.cached, inner.calls) == ("Lima", False, 1)
    assert result.completion_tokens == count_tokens("Cusco") != 99


_WRITER = textwrap.dedent(
    """
    import json, pathlib, random, sys, time
    from sammo_core.runners import LLMRequest, LLMResult, PostgresCache

    url, index, folder = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3])
    n = int(sys.argv[4])
    order = list(range(n))
    random.Random(index).shuffle(order)  # each writer its own order: they meet on many keys
    with PostgresCache(url) as cache:  # all of them create the table at once
        (folder / f"ready-{index}").touch()
        while not (folder / "go").exists():
            time.sleep(0.002)
        held = {}
        for i in order:
            request = LLMRequest.from_prompt(f"question {i}")
            answer = LLMResult(f"answer {i} by writer {index}", 3, 4, model="m")
            held[i] = cache.put("m", request, answer).text
    print(json.dumps(held))
    """
)


def test_writer_processes_racing_on_the_same_keys_agree(pg_url: str, tmp_path: Path) -> None:
    n, writers = 150, 4
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, pg_url, str(w), str(tmp_path), str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for w in range(writers)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("ready-*"))) < writers and time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                break
            time.sleep(0.01)
        (tmp_path / "go").touch()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0] * writers, [err for _, err in outputs]
    held = [{int(k): v for k, v in json.loads(out).items()} for out, _ in outputs]
    with PostgresCache(pg_url, mode="replay") as cache:
        assert len(cache) == n
        for i in range(n):
            stored = cache.get("m", LLMRequest.from_prompt(f"question {i}"))
            assert stored is not None
            # Whoever wrote first, every writer returned the stored answer.
            assert {h[i] for h in held} == {stored.text}, i
            assert stored.text.startswith(f"answer {i} by writer ")


def test_a_lost_connection_is_opened_again(pg_url: str) -> None:
    request = LLMRequest.from_prompt("Hi")
    with PostgresCache(pg_url) as cache:
        _ = cache.put("m", request, LLMResult("Hello"))
        with psycopg.connect(pg_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        assert killed == [(True,)]
        stored = cache.get("m", request)
        assert stored is not None and stored.text == "Hello"


def test_tables_are_versioned_so_older_keys_never_answer(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE sammo_completions_v1 (key TEXT PRIMARY KEY, value BYTEA NOT NULL, "
            "created DOUBLE PRECISION NOT NULL)"
        )
        conn.execute("INSERT INTO sammo_completions_v1 VALUES ('k', '{\"text\": \"old\"}', 0)")
    with pytest.raises(ConfigError, match="holds tables of older key versions only"):
        PostgresCache(pg_url, mode="replay")
    with PostgresCache(pg_url) as cache:
        assert cache.stale and len(cache) == 0
        assert cache.rows_by_version() == {1: 1, 2: 0}
        assert cache.get("m", LLMRequest.from_prompt("Hi")) is None


def test_a_server_that_is_down_gives_one_line_without_the_password(tmp_path: Path) -> None:
    from sammo_core.testing.postgres_server import _free_port

    url = f"postgresql://sammo:s3cret@127.0.0.1:{_free_port()}/cache"
    with pytest.raises(ConfigError) as info:
        build_runner("loopback", base_url="http://127.0.0.1:9/v1", cache=url)
    message = str(info.value)
    assert "\n" not in message and "s3cret" not in message
    assert message.startswith("cannot open the PostgreSQL cache postgresql://***@127.0.0.1:")
    assert "start the server or fix the URL" in message


def test_a_missing_database_names_the_masked_url(pg_url: str) -> None:
    url = pg_url.replace("postgres@", "postgres:s3cret@").rsplit("/", 1)[0] + "/nope"
    with pytest.raises(ConfigError) as info:
        PostgresCache(url)
    message = str(info.value)
    assert "\n" not in message and "s3cret" not in message
    assert 'database "nope" does not exist' in message


def test_without_psycopg_one_line_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    with pytest.raises(ConfigError, match=r"pip install 'sammo-core\[postgres\]'"):
        PostgresCache("postgresql://sammo@127.0.0.1:5432/cache")
