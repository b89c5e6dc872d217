"""Hardening of the runner stack against a misbehaving server (issue 9), on the loopback server.

Secrets stay out of errors wherever the server's message is cut; ``timeout`` is a deadline for a
whole request, even against a server that drips its answer; retries are counted by cause; a huge
reply is cut before it is returned, stored or written; and the proposer of ``optimize`` gets the
same ``--timeout`` as the task model.
"""

from __future__ import annotations

import asyncio
import json
import re
import string
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sammo_core.cli import main
from sammo_core.errors import ConfigError, RunnerError
from sammo_core.runners import (
    DEFAULT_MAX_REPLY_BYTES,
    Cache,
    CachedRunner,
    LLMRequest,
    LLMResult,
    Message,
    OpenAIRunner,
    RetryPolicy,
    ScriptedRunner,
    build_runner,
    runner_stats,
)
from sammo_core.runners.openai_runner import redact_secret
from sammo_core.testing.chat_server import ChatServer, FaultPlan, ReplyFault
from sammo_core.testing.synthetic import answer, items

T = TypeVar("T")
EXAMPLES = Path(__file__).parents[2] / "sammo_core" / "examples"
KEY = "sk-SECRET-" + (string.ascii_letters + string.digits) + "0123456789" * 4  # 112 characters
CUT = 300  # the runner cuts a server's message to this many characters
ONCE = RetryPolicy(max_attempts=1)
FAST = RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.02, seed=0)
RUN_YESNO = ["run", str(EXAMPLES / "yesno.py"), "--data", str(EXAMPLES / "yesno.jsonl")]
RUN_YESNO += ["--model", "loopback"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    yield


def run(runner: OpenAIRunner, job: Callable[[OpenAIRunner], Awaitable[T]]) -> T:
    async def main() -> T:
        async with runner:
            return await job(runner)

    return asyncio.run(main())


def longest_key_prefix(text: str) -> int:
    """The length of the longest prefix of KEY (8 characters or more) in ``text``, else 0."""
    return max((n for n in range(8, len(KEY) + 1) if KEY[:n] in text), default=0)


# -- secrets --------------------------------------------------------------------------------------


def quoting_reply(request: Mapping[str, Any]) -> str:
    """Fails with the status and after the offset the prompt names, quoting the key there."""
    status, offset = request["messages"][-1]["content"].split()
    raise ReplyFault(int(status), "x" * int(offset) + KEY + " may not use this model.")


@pytest.mark.parametrize("status", [400, 500])
def test_no_part_of_the_key_leaks_at_any_offset_around_the_cut(status: int) -> None:
    # "HTTP 500: " comes first, so the key straddles the cut for offsets near CUT - len(KEY).
    offsets = range(CUT - len(KEY) - 20, CUT + 5)

    async def job(runner: OpenAIRunner) -> dict[int, str]:
        errors = {}
        for offset in offsets:
            with pytest.raises(RunnerError) as info:
                await runner.generate(LLMRequest.from_prompt(f"{status} {offset}"))
            errors[offset] = "".join(traceback.format_exception(info.value))  # causes too
        return errors

    with ChatServer(reply=quoting_reply) as server:
        errors = run(OpenAIRunner("m", base_url=server.base_url, api_key=KEY, retry=ONCE), job)
    leaks = {offset: n for offset, text in errors.items() if (n := longest_key_prefix(text))}
    assert leaks == {}
    for offset, text in errors.items():
        assert f"HTTP {status}: xxx" in text
        if offset + len("HTTP 500: ***") <= CUT:  # the key began before the cut: it shows as ***
            assert "x***" in text, offset


def test_a_quoted_prefix_of_the_key_is_redacted() -> None:
    def reply(request: Mapping[str, Any]) -> str:
        raise ReplyFault(401 if "auth" in str(request) else 403, f"key {KEY[:12]}... denied")

    with ChatServer(reply=reply) as server:
        runner = OpenAIRunner("m", base_url=server.base_url, api_key=KEY, retry=ONCE)
        with pytest.raises(RunnerError) as info:
            run(runner, lambda r: r.generate(LLMRequest.from_prompt("hi")))
    assert "HTTP 403: key ***... denied" in str(info.value)
    assert redact_secret(f"a {KEY[:7]} b {KEY[:8]} c", KEY) == f"a {KEY[:7]} b *** c"
    assert redact_secret(f"{KEY}{KEY}", KEY) == "******"


# -- deadlines ------------------------------------------------------------------------------------


def test_timeout_is_a_deadline_for_an_answer_that_drips_in() -> None:
    """Each byte comes well within the timeout; the whole answer would take a minute."""

    async def job(runner: OpenAIRunner) -> float:
        started = time.monotonic()
        async with asyncio.timeout(15):  # the old per-read timeout waited here for 60 s
            with pytest.raises(RunnerError, match=r"2 attempts; last failure: no whole answer"):
                await runner.generate(LLMRequest.from_prompt("hi"))
        return time.monotonic() - started

    policy = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02)
    with ChatServer(faults=FaultPlan.always("drip"), drip_interval=0.2) as server:
        runner = OpenAIRunner("m", base_url=server.base_url, timeout=0.5, retry=policy)
        seconds = run(runner, job)
        requests = server.stats().requests
    assert seconds < 3.0
    assert requests == 2
    assert runner.retry_stats.retries_by_cause == {"timeout": 1}
    assert runner.retry_stats.failed == 1


def test_a_dripping_answer_is_retried_and_the_retry_succeeds() -> None:
    with ChatServer(faults=FaultPlan.scripted(["drip"]), drip_interval=0.1) as server:
        runner = OpenAIRunner("m", base_url=server.base_url, timeout=0.5, retry=FAST)
        result = run(runner, lambda r: r.generate(LLMRequest.from_prompt("hi")))
    assert result.text == "echo: hi"
    assert runner.retry_stats.retries_by_cause == {"timeout": 1}


def proposer_reply(arrivals: list[str]) -> Callable[[Mapping[str, Any]], str]:
    """The task model answers like the synthetic one; the proposer hangs on its first request."""

    def reply(body: Mapping[str, Any]) -> str:
        if body["model"] != "proposer":
            messages = tuple(Message(m["role"], m["content"]) for m in body["messages"])
            return answer(LLMRequest(messages=messages))
        arrivals.append(time.strftime("%X"))
        if len(arrivals) == 1:
            raise ReplyFault("slow")  # answers only after slow_delay: a hang for this client
        return "Decide whether the item is labelled yes or no, and answer with that label."

    return reply


def test_a_hanging_proposer_is_cut_off_by_timeout(tmp_path: Path) -> None:
    program = tmp_path / "program.py"
    program.write_text("from sammo_core.testing.synthetic import start_program\n\n")
    program.write_text(program.read_text() + "program = start_program()\n")
    data = tmp_path / "data.jsonl"
    items(24).save(data)
    arrivals: list[str] = []
    args = [
        "optimize", str(program), "--data", str(data), "--model", "loopback",
        "--proposer-model", "proposer", "--operators", "content", "--strategy", "beam",
        "--budget", "3", "--width", "1", "--depth", "1", "--seed", "0",
        "--out", str(tmp_path / "run"), "--timeout", "1",
    ]  # fmt: skip
    with ChatServer(reply=proposer_reply(arrivals), slow_delay=30.0) as server:
        started = time.monotonic()
        code = main([*args, "--base-url", server.base_url])
        seconds = time.monotonic() - started
        faults = server.stats().by_fault  # counted when decided: the hung one never finished
    assert code == 0
    assert faults == {"slow": 1}  # the proposer's first request hung ...
    assert len(arrivals) >= 2  # ... was cut off after --timeout and asked again
    assert seconds < 20  # not the 30 s the hung request would have taken


# -- retries by cause -----------------------------------------------------------------------------


def test_stats_count_every_request_retry_cause_and_wait() -> None:
    script = ["429", "500", "503", "drop", "garbage", "slow", "drip"]
    with ChatServer(
        faults=FaultPlan.scripted(script), retry_after=0.05, slow_delay=2, drip_interval=0.05
    ) as server:
        stack = build_runner("m", base_url=server.base_url, timeout=0.3)
        stack.backend.retry = FAST  # type: ignore[attr-defined]
        result = stack.runner.generate_sync(LLMRequest.from_prompt("hi"))
        seen = server.stats()
    stats = runner_stats(stack.runner)
    assert result.text == "echo: hi"
    assert (stats.calls, stats.attempts, stats.retries, stats.failed) == (1, 8, 7, 0)
    assert seen.requests + seen.in_flight == stats.attempts  # the slow one is still asleep
    assert stats.retries_by_cause == {
        "429": 1,
        "5xx": 2,
        "dropped": 1,
        "malformed": 1,
        "timeout": 2,
    }
    assert stats.wait_seconds >= 0.05  # at least the 429's Retry-After
    assert stack.retry_stats == stats == runner_stats(stack)
    assert stats.to_dict()["retries_by_cause"]["other"] == 0
    assert stack.usage.calls == 1  # what the budget counts: one call, eight requests


def test_stats_match_what_a_fault_injecting_server_saw() -> None:
    kinds = ("429", "500", "503", "drop", "garbage")
    with ChatServer(fault_rate=0.2, fault_kinds=kinds, seed=0, retry_after=0.01) as server:
        stack = build_runner("m", base_url=server.base_url, timeout=5)
        stack.backend.retry = FAST  # type: ignore[attr-defined]
        requests = [LLMRequest.from_prompt(f"question {i}") for i in range(120)]
        asyncio.run(stack.runner.generate_many(requests))
        seen = server.stats()
    stats = stack.retry_stats
    faults = seen.by_fault
    assert sum(faults.values()) >= 10
    assert (stats.calls, stats.attempts, stats.retries) == (
        120,
        seen.requests,
        sum(faults.values()),
    )
    assert stats.retries_by_cause == {
        cause: n
        for cause, n in {
            "429": faults.get("429", 0),
            "5xx": faults.get("500", 0) + faults.get("503", 0),
            "dropped": faults.get("drop", 0),
            "malformed": faults.get("garbage", 0),
        }.items()
        if n
    }


def test_run_reports_requests_and_retries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gold = {
        json.loads(line)["input"]: json.loads(line)["output"]
        for line in (EXAMPLES / "yesno.jsonl").read_text().splitlines()
    }

    def oracle(request: Mapping[str, Any]) -> str:
        question = re.findall(r"Input: (.*)", request["messages"][-1]["content"])[-1].strip()
        return gold[question]

    script = ["429", "500", None, "drop", None, "garbage"]
    with ChatServer(reply=oracle, faults=FaultPlan.scripted(script), retry_after=0.01) as server:
        url = ["--base-url", server.base_url]
        code = main([*RUN_YESNO, *url, "--out", str(tmp_path), "--concurrency", "1"])
        sent = server.stats().requests
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["usage"]["calls"] == 20
    assert results["requests"]["attempts"] == sent == 24
    assert results["requests"]["retries_by_cause"] == {
        "429": 1,
        "5xx": 1,
        "timeout": 0,
        "dropped": 1,
        "malformed": 1,
        "other": 0,
    }
    table = capsys.readouterr().out
    assert re.search(r"requests sent\s+│\s+24", table)
    assert "4 (429 1, 5xx 1, dropped 1, malformed 1)" in table


# -- reply size -----------------------------------------------------------------------------------


def huge(request: Mapping[str, Any]) -> str:
    return "Yes\n" + "é" * 5_000_000  # 10 MB of UTF-8


def test_a_huge_reply_is_cut_returned_stored_and_replayed_cut(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    with ChatServer(reply=huge) as server:
        stack = build_runner("m", base_url=server.base_url, cache=cache)
        first = stack.runner.generate_sync(LLMRequest.from_prompt("hi"))
        again = stack.runner.generate_sync(LLMRequest.from_prompt("hi"))
        asyncio.run(stack.aclose())
    assert first.truncated and again.truncated and again.cached
    assert first.text == again.text
    assert first.text.startswith("Yes\néé")
    assert DEFAULT_MAX_REPLY_BYTES - 2 < len(first.text.encode()) <= DEFAULT_MAX_REPLY_BYTES
    assert cache.stat().st_size < 2 * DEFAULT_MAX_REPLY_BYTES
    assert stack.backend.stats.truncated == 1  # type: ignore[attr-defined]


def test_the_reply_cap_is_configurable_and_checked() -> None:
    with ChatServer(reply=huge) as server:
        small = OpenAIRunner("m", base_url=server.base_url, max_reply_bytes=9)
        whole = OpenAIRunner("m", base_url=server.base_url, max_reply_bytes=None)
        cut = run(small, lambda r: r.generate(LLMRequest.from_prompt("hi")))
        full = run(whole, lambda r: r.generate(LLMRequest.from_prompt("hi")))
    assert (cut.text, cut.truncated) == ("Yes\néé", True)  # 4 + 2 * 2 bytes; a third é splits
    assert (len(full.text), full.truncated) == (5_000_004, False)
    assert LLMResult("short").capped(5) == LLMResult("short")
    with pytest.raises(ConfigError, match="max_reply_bytes must be >= 1 or None; got 0"):
        OpenAIRunner("m", base_url="http://127.0.0.1:9/v1", max_reply_bytes=0)


def test_run_writes_cut_replies_and_rejects_a_bad_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*RUN_YESNO, "--limit", "2", "--cache", str(tmp_path / "c.sqlite")]
    with ChatServer(reply=huge) as server:
        url = ["--base-url", server.base_url]
        assert main([*argv, *url, "--out", str(tmp_path), "--max-reply-bytes", "1000"]) == 0
        assert main([*argv, *url, "--max-reply-bytes", "-1"]) == 1
    predictions = (tmp_path / "predictions.jsonl").read_bytes()
    assert len(predictions) < 2 * 4 * 1000 + 4000  # two rows, reply at most twice each
    assert [json.loads(row)["prediction"] for row in predictions.splitlines()] == ["Yes", "Yes"]
    assert "--max-reply-bytes must be >= 0 (0 keeps every byte); got -1" in capsys.readouterr().err


def test_the_cache_caps_what_any_backend_returns_and_stores(tmp_path: Path) -> None:
    inner = ScriptedRunner(default="y" * 10_000)
    with Cache(tmp_path / "c.sqlite") as cache:
        runner = CachedRunner(inner, cache, max_reply_bytes=100)
        first = runner.generate_sync(LLMRequest.from_prompt("hi"))
        stored = cache.get("scripted", LLMRequest.from_prompt("hi"))
        again = runner.generate_sync(LLMRequest.from_prompt("hi"))
    assert (first.text, first.truncated) == ("y" * 100, True)
    assert stored is not None and (stored.text, stored.truncated) == ("y" * 100, True)
    assert (again.text, again.cached, inner.calls) == ("y" * 100, True, 1)
