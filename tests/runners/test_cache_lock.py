"""A cache file another process holds locked (issue 19): answers are kept, never lost; and a
ledger that counts cache hits as calls."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from sammo_core.errors import BudgetExceededError, ConfigError, RunnerError
from sammo_core.runners import (
    AccountingRunner,
    Budget,
    Cache,
    CachedRunner,
    LLMRequest,
    LLMResult,
    ScriptedRunner,
)
from sammo_core.runners.accounting import Ledger
from sammo_core.runners.cache import BUSY_TIMEOUT_ENV

ASKED = LLMRequest.from_prompt("Capital of France?")


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """A cache file that another connection holds in an exclusive transaction."""
    path = tmp_path / "cache.sqlite"
    Cache(path).close()  # created, in WAL mode
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield path
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_an_answer_kept_from_a_locked_file_is_served_and_written_once_it_is_free(
    locked: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = Cache(locked, busy_timeout=60)
    cache.put("m", ASKED, LLMResult("Paris", 5, 1, model="m"))
    assert "is locked by another process; keeping answers in memory" in caplog.text
    result = cache.get("m", ASKED)
    assert result is not None and result.text == "Paris"
    assert cache.contains("m", ASKED)
    with sqlite3.connect(locked) as reader:  # not in the file yet
        assert reader.execute("SELECT COUNT(*) FROM completions").fetchone() == (0,)


def test_past_the_busy_timeout_put_fails_in_one_line_and_the_next_open_keeps_the_answers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cache.sqlite"
    Cache(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    cache = Cache(path, busy_timeout=0)
    with pytest.raises(RunnerError) as info:
        cache.put("m", ASKED, LLMResult("Paris", 5, 1, model="m"))
    spilled = tmp_path / f"cache.sqlite.pending-{os.getpid()}.jsonl"
    assert str(info.value).startswith(
        f"cache {str(path)!r} stayed locked by another process for 0 s; the answers paid but "
        f"not in it (1 so far) go to {str(spilled)!r} and join the cache when it next opens."
    )
    assert "\n" not in str(info.value)
    cache.close()
    holder.execute("ROLLBACK")
    holder.close()
    with Cache(path) as again:
        stored = again.get("m", ASKED)
        assert stored is not None and stored.text == "Paris" and len(again) == 1
    assert not spilled.exists()


def test_close_writes_what_a_still_locked_file_could_not_take(
    locked: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = Cache(locked, busy_timeout=0.3)
    cache.put("m", ASKED, LLMResult("Paris", 5, 1, model="m"))
    cache.close()
    assert "stayed locked; 1 answers were written to" in caplog.text
    assert len(list(locked.parent.glob("cache.sqlite.pending-*.jsonl"))) == 1


@pytest.mark.parametrize("raw", ["soon", "-1", "inf", "nan"])
def test_a_bad_busy_timeout_variable_is_named(
    raw: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BUSY_TIMEOUT_ENV, raw)
    with pytest.raises(ConfigError, match=f"{BUSY_TIMEOUT_ENV}='{raw}' is not a number of sec"):
        Cache(tmp_path / "c.sqlite")


def test_a_ledger_counting_hits_as_calls_spends_a_calls_budget_alike_warm_or_cold(
    tmp_path: Path,
) -> None:
    requests = [LLMRequest.from_prompt(f"q{i}") for i in range(3)]

    async def ask(cache: Cache, hits_are_calls: bool) -> tuple[int, int]:
        ledger = Ledger(Budget(calls=2), hits_are_calls=hits_are_calls)
        runner = AccountingRunner(CachedRunner(ScriptedRunner(default="a"), cache), ledger=ledger)
        answered = 0
        for request in requests:
            try:
                await runner.generate(request)
            except BudgetExceededError:
                break
            answered += 1
        return answered, ledger.usage.calls

    with Cache(tmp_path / "c.sqlite") as cache:
        assert asyncio.run(ask(cache, True)) == (2, 2)  # cold: two calls paid
        assert asyncio.run(ask(cache, True)) == (2, 0)  # warm: the same two, none paid
        assert asyncio.run(ask(cache, False)) == (3, 1)  # hits free: more work when warm
