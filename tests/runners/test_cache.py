"""The persistent cache: keys, hit and miss counts, replay, durability, sharing, deduplication."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import orjson
import pytest

from sammo_core.errors import CacheMissError, ConfigError, RunnerError
from sammo_core.runners.base import LLMRequest, LLMResult, Message
from sammo_core.runners.cache import Cache, CachedRunner, cache_key
from sammo_core.runners.scripted import ScriptedRunner


def _requests(n: int) -> list[LLMRequest]:
    return [LLMRequest.from_prompt(f"What is {i} + {i}?") for i in range(n)]


def _double(request: LLMRequest) -> str:
    number = int(request.prompt_text.split()[2])
    return str(2 * number)


def test_second_identical_run_makes_no_inner_calls(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    requests = _requests(5)
    first_inner = ScriptedRunner(rules={"What is": _double}, model="m")
    with Cache(path) as cache:
        first = asyncio.run(CachedRunner(first_inner, cache).generate_many(requests))
        assert (cache.hits, cache.misses, len(cache)) == (0, 5, 5)
    assert first_inner.calls == 5
    assert [r.text for r in first] == ["0", "2", "4", "6", "8"]
    assert not any(r.cached for r in first)

    second_inner = ScriptedRunner(model="m")  # would raise on any call: it has no replies
    with Cache(path) as cache:
        second = asyncio.run(CachedRunner(second_inner, cache).generate_many(requests))
        assert (cache.hits, cache.misses, len(cache)) == (5, 0, 5)
    assert second_inner.calls == 0
    assert [r.text for r in second] == [r.text for r in first]
    assert all(r.cached for r in second)
    # Token counts are kept so accounting can report what the hits saved.
    assert [r.total_tokens for r in second] == [r.total_tokens for r in first]


def test_partial_overlap_counts_exactly(tmp_path: Path) -> None:
    inner = ScriptedRunner(rules={"What is": _double}, model="m")
    with Cache(tmp_path / "c.sqlite") as cache:
        runner = CachedRunner(inner, cache)
        asyncio.run(runner.generate_many(_requests(3)))
        asyncio.run(runner.generate_many(_requests(5)))
        assert (cache.hits, cache.misses, len(cache), inner.calls) == (3, 5, 5, 5)


BASE = LLMRequest.from_prompt("Classify: great phone", system="You label reviews.")


@pytest.mark.parametrize(
    "changed",
    [
        dataclasses.replace(BASE, sample_index=1),
        dataclasses.replace(BASE, temperature=0.7),
        dataclasses.replace(BASE, max_tokens=5),
        dataclasses.replace(BASE, seed=1),
        dataclasses.replace(BASE, seed=None),
        dataclasses.replace(BASE, stop=("\n",)),
        dataclasses.replace(BASE, messages=BASE.messages[1:]),
        dataclasses.replace(BASE, messages=(*BASE.messages[:1], Message("user", "Classify: bad"))),
    ],
    ids=[
        "sample_index",
        "temperature",
        "max_tokens",
        "seed",
        "no_seed",
        "stop",
        "no_system",
        "msg",
    ],
)
def test_anything_that_changes_the_answer_changes_the_key(changed: LLMRequest) -> None:
    assert cache_key("m", changed) != cache_key("m", BASE)


def test_key_is_stable_and_includes_the_model() -> None:
    same = LLMRequest.from_prompt(
        "Classify: great phone", system="You label reviews.", temperature=0
    )
    assert cache_key("m", same) == cache_key("m", BASE)
    assert len(cache_key("m", BASE)) == 64
    assert cache_key("gpt-4o", BASE) != cache_key("gpt-4o-mini", BASE)


def test_distinct_models_share_a_file_without_mixing(tmp_path: Path) -> None:
    with Cache(tmp_path / "c.sqlite") as cache:
        a = CachedRunner(ScriptedRunner(default="from a", model="a"), cache)
        b = CachedRunner(ScriptedRunner(default="from b", model="b"), cache)
        assert asyncio.run(a.generate(BASE)).text == "from a"
        assert asyncio.run(b.generate(BASE)).text == "from b"
        assert asyncio.run(a.generate(BASE)).text == "from a"
        assert (cache.hits, cache.misses, len(cache)) == (1, 2, 2)


def test_replay_serves_hits_and_names_the_fix_on_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with Cache(path) as cache:
        asyncio.run(CachedRunner(ScriptedRunner(default="Paris", model="m"), cache).generate(BASE))
    inner = ScriptedRunner(default="never used", model="m")
    with Cache(path, mode="replay") as cache:
        runner = CachedRunner(inner, cache)
        assert asyncio.run(runner.generate(BASE)).text == "Paris"
        other = LLMRequest.from_prompt("Capital of Peru?")
        with pytest.raises(CacheMissError) as info:
            asyncio.run(runner.generate(other))
        assert "'m'" in str(info.value)
        assert "Capital of Peru?" in str(info.value)
        assert "mode='readwrite'" in str(info.value)
        cache.put("m", other, LLMResult("Lima"))  # replay never writes
        assert (len(cache), cache.hits, cache.misses) == (1, 1, 1)
    assert inner.calls == 0


def test_replay_of_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"does not exist.*mode='readwrite'"):
        Cache(tmp_path / "absent.sqlite", mode="replay")
    assert not (tmp_path / "absent.sqlite").exists()


def test_off_mode_opens_no_file_and_always_calls(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    inner = ScriptedRunner(default="x", model="m")
    with Cache(path, mode="off") as cache:
        runner = CachedRunner(inner, cache)
        asyncio.run(runner.generate(BASE))
        result = asyncio.run(runner.generate(BASE))
        assert (cache.hits, cache.misses, len(cache), inner.calls) == (0, 2, 0, 2)
    assert not result.cached
    assert not path.exists()


def test_bad_mode_and_closed_cache_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'write' is not one of readwrite, replay, off"):
        Cache(tmp_path / "c.sqlite", mode="write")  # type: ignore[arg-type]
    cache = Cache(tmp_path / "c.sqlite")
    cache.close()
    cache.close()
    assert cache.closed
    with pytest.raises(ConfigError, match="is closed"):
        cache.get("m", BASE)


def test_stored_values_are_the_result_fields_only(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with Cache(path) as cache:
        cache.put("m", BASE, LLMResult("hi", 3, 1, model="m", cached=True, cost_usd=0.5))
        assert cache.get("m", BASE) == LLMResult("hi", 3, 1, model="m", cost_usd=0.5)
    with sqlite3.connect(path) as conn:
        (journal,) = conn.execute("PRAGMA journal_mode").fetchone()
        rows = conn.execute("SELECT key, value, created FROM completions").fetchall()
    conn.close()
    assert journal == "wal"
    [(key, value, created)] = rows
    assert key == cache_key("m", BASE)
    assert set(orjson.loads(value)) == {f.name for f in dataclasses.fields(LLMResult)}
    assert created > 0


WRITER = textwrap.dedent(
    """
    import sys
    from sammo_core.runners.base import LLMRequest, LLMResult
    from sammo_core.runners.cache import Cache

    cache = Cache(sys.argv[1])
    for i in range(1_000_000):
        request = LLMRequest.from_prompt(f"row {i}")
        cache.put("m", request, LLMResult(f"answer {i}", 2, 2, model="m"))
        print(i, flush=True)
    """
)


def test_a_killed_writer_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        # The child imports sammo_core exactly as this process does.
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
    )
    acknowledged = -1
    try:
        assert process.stdout is not None
        for line in process.stdout:
            acknowledged = int(line)
            if acknowledged >= 300:
                os.kill(process.pid, signal.SIGKILL)
                break
        # Lines printed before the kill landed are acknowledged too.
        for line in process.stdout:
            if line.strip().isdigit():
                acknowledged = int(line)
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    assert acknowledged >= 300

    with Cache(path) as cache:
        for i in range(acknowledged + 1):
            stored = cache.get("m", LLMRequest.from_prompt(f"row {i}"))
            assert stored is not None, f"entry {i} of {acknowledged} acknowledged is lost"
            assert stored.text == f"answer {i}"
        assert len(cache) >= acknowledged + 1
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()


def test_two_cached_runners_in_threads_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    errors: list[BaseException] = []
    outputs: dict[int, list[str]] = {}

    def work(worker: int) -> None:
        # Each worker its own Cache (own connection), rows 0-59 and 40-99: they overlap.
        requests = _requests(100)[worker * 40 : worker * 40 + 60]
        inner = ScriptedRunner(rules={"What is": _double}, model="m")
        try:
            with Cache(path) as cache:
                runner = CachedRunner(inner, cache)
                results = asyncio.run(runner.generate_many(requests))
                outputs[worker] = [r.text for r in results]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert outputs[0] == [str(2 * i) for i in range(60)]
    assert outputs[1] == [str(2 * i) for i in range(40, 100)]
    with Cache(path) as cache:
        assert len(cache) == 100


def test_one_cache_shared_by_threads() -> None:
    cache = Cache(":memory:")
    try:
        results = ["ok"] * 8

        def work(index: int) -> None:
            for i in range(50):
                request = LLMRequest.from_prompt(f"{index}-{i}")
                cache.put("m", request, LLMResult(f"{index}-{i}"))
                stored = cache.get("m", request)
                if stored is None or stored.text != f"{index}-{i}":
                    results[index] = "wrong"

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == ["ok"] * 8
        assert (len(cache), cache.hits) == (400, 400)
    finally:
        cache.close()


def test_identical_requests_in_flight_share_one_inner_call(tmp_path: Path) -> None:
    inner = ScriptedRunner(default="shared", model="m", latency=0.05)
    with Cache(tmp_path / "c.sqlite") as cache:
        runner = CachedRunner(inner, cache)
        other = LLMRequest.from_prompt("something else")
        results = asyncio.run(runner.generate_many([BASE] * 10 + [other]))
        assert inner.calls == 2
        assert runner.deduplicated == 9
        assert [r.text for r in results] == ["shared"] * 11
        assert [r.cached for r in results] == [False] + [True] * 9 + [False]
        assert (cache.hits, cache.misses, len(cache)) == (0, 2, 2)


def test_a_failed_call_reaches_every_waiter_and_is_not_stored(tmp_path: Path) -> None:
    inner = ScriptedRunner(model="m", latency=0.01)  # no replies: every call raises
    with Cache(tmp_path / "c.sqlite") as cache:
        runner = CachedRunner(inner, cache)

        async def run() -> list[LLMResult | BaseException]:
            return await asyncio.gather(
                *(runner.generate(BASE) for _ in range(3)), return_exceptions=True
            )

        outcomes = asyncio.run(run())
        assert all(isinstance(o, RunnerError) for o in outcomes)
        assert (inner.calls, len(cache)) == (1, 0)
        # Nothing stays in flight: the next call tries again.
        inner._default = "recovered"
        assert asyncio.run(runner.generate(BASE)).text == "recovered"


def test_cancelling_one_waiter_leaves_the_shared_call_running(tmp_path: Path) -> None:
    inner = ScriptedRunner(default="done", model="m", latency=0.05)
    with Cache(tmp_path / "c.sqlite") as cache:
        runner = CachedRunner(inner, cache)

        async def run() -> LLMResult:
            first = asyncio.ensure_future(runner.generate(BASE))
            second = asyncio.ensure_future(runner.generate(BASE))
            await asyncio.sleep(0.01)
            first.cancel()
            return await second

        assert asyncio.run(run()).text == "done"
        assert (inner.calls, len(cache)) == (1, 1)


def test_model_follows_the_inner_runner(tmp_path: Path) -> None:
    inner = ScriptedRunner(model="gpt-4o-mini")
    with Cache(tmp_path / "c.sqlite") as cache:
        runner = CachedRunner(inner, cache)
        assert runner.model == "gpt-4o-mini"
        with pytest.raises(AttributeError, match="inner runner"):
            runner.model = "other"
        assert "CachedRunner(" in repr(runner)


# -- the endpoint is part of the key -----------------------------------------------------------


def test_same_model_name_at_two_base_urls_does_not_share_entries(tmp_path: Path) -> None:
    from sammo_core.runners.factory import build_runner
    from sammo_core.testing.chat_server import ChatServer

    path = tmp_path / "cache.sqlite"

    async def ask(base_url: str, **options: str) -> LLMResult:
        stack = build_runner("llama3", base_url=base_url, cache=path, **options)  # type: ignore[arg-type]
        try:
            return await stack.runner.generate(BASE)
        finally:
            await stack.aclose()

    with (
        ChatServer(reply=lambda _: "from a") as a,
        ChatServer(reply=lambda _: "from b") as b,
    ):
        first = asyncio.run(ask(a.base_url))
        second = asyncio.run(ask(b.base_url))
        again = asyncio.run(ask(a.base_url))
        assert (first.text, first.cached) == ("from a", False)
        assert (second.text, second.cached) == ("from b", False)
        assert (again.text, again.cached) == ("from a", True)
        assert (a.stats().completions, b.stats().completions) == (1, 1)

        # One label for equivalent servers lets them share answers, as documented.
        shared = asyncio.run(ask(a.base_url, cache_endpoint="llama3-replicas"))
        replica = asyncio.run(ask(b.base_url, cache_endpoint="llama3-replicas"))
        assert (shared.text, shared.cached) == ("from a", False)
        assert (replica.text, replica.cached) == ("from a", True)
        assert (a.stats().completions, b.stats().completions) == (2, 1)


def test_keys_include_the_endpoint_and_cached_runner_takes_the_inner_one() -> None:
    assert cache_key("m", BASE, endpoint="http://a/v1") != cache_key(
        "m", BASE, endpoint="http://b/v1"
    )
    assert cache_key("m", BASE, endpoint=None) != cache_key("m", BASE, endpoint="http://a/v1")
    inner = ScriptedRunner(model="m")
    inner.endpoint = "http://a/v1"
    with Cache(":memory:", mode="off") as cache:
        assert CachedRunner(inner, cache).endpoint == "http://a/v1"
        assert CachedRunner(inner, cache, endpoint="shared").endpoint == "shared"


def _write_version_1_entry(path: Path, model: str, request: LLMRequest, text: str) -> None:
    """An entry as sammo-core wrote it before keys held the endpoint (key version 1)."""
    import hashlib

    payload = request.to_dict()
    payload["temperature"] = float(payload["temperature"])
    blob = orjson.dumps({"v": 1, "model": model, "request": payload}, option=orjson.OPT_SORT_KEYS)
    value = orjson.dumps(LLMResult(text, 1, 1, model=model).to_dict())
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE completions (key TEXT PRIMARY KEY, value BLOB NOT NULL, created REAL)"
        )
        conn.execute(
            "INSERT INTO completions VALUES (?, ?, 0)", (hashlib.sha256(blob).hexdigest(), value)
        )


def test_old_cache_files_keyed_without_endpoint_are_not_served(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _write_version_1_entry(path, "m", BASE, "answer from some server")
    with Cache(path, mode="replay") as cache:
        assert cache.stale
        with pytest.raises(CacheMissError, match=r"older version.*mode='readwrite'"):
            asyncio.run(CachedRunner(ScriptedRunner(model="m"), cache).generate(BASE))
    inner = ScriptedRunner(default="fresh", model="m")
    with Cache(path) as cache:
        result = asyncio.run(CachedRunner(inner, cache).generate(BASE))
        assert (result.text, result.cached, inner.calls) == ("fresh", False, 1)
    with Cache(path, mode="replay") as cache:
        assert not cache.stale  # re-recorded with the current key version
        assert asyncio.run(CachedRunner(ScriptedRunner(model="m"), cache).generate(BASE)).text == (
            "fresh"
        )
