"""OpenAIRunner against the real loopback ChatServer: the openai client configures it, aiohttp
carries its requests."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from sammo_core.errors import ConfigError, RunnerError
from sammo_core.runners.base import LLMRequest, LLMResult
from sammo_core.runners.openai_runner import OpenAIRunner
from sammo_core.runners.retry import RetryPolicy
from sammo_core.testing.chat_server import FAULT_KINDS, ChatServer, FaultKind, FaultPlan
from sammo_core.testing.imports import loaded_by_importing
from sammo_core.tokens import count_tokens

SECRET = "sk-test-SECRET"
FAST = RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.05, seed=0)
ENV_VARS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "OPENAI_API_VERSION",
    "AZURE_OPENAI_AD_TOKEN",
)
T = TypeVar("T")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    yield


def use(runner: OpenAIRunner, job: Callable[[OpenAIRunner], Awaitable[T]]) -> T:
    """Run ``job(runner)`` on a fresh loop and close the runner's connections after."""

    async def main() -> T:
        async with runner:
            return await job(runner)

    return asyncio.run(main())


def ask(runner: OpenAIRunner, *requests: LLMRequest) -> list[LLMResult]:
    return use(runner, lambda r: r.generate_many(requests))


def prompts(n: int) -> list[LLMRequest]:
    return [
        LLMRequest.from_prompt(f"Question {i}: yes or no?", system="Be brief.") for i in range(n)
    ]


# -- the happy path ---------------------------------------------------------------------------


def test_success_with_exact_usage_and_request_mapping() -> None:
    seen: list[dict[str, Any]] = []

    def reply(request: Any) -> str:
        seen.append(dict(request))
        return "Paris is the capital."

    request = LLMRequest.from_prompt(
        "What is the capital of France?",
        system="Answer in one sentence.",
        temperature=0.5,
        max_tokens=50,
        seed=7,
        stop=("\n\n",),
    )
    with ChatServer(reply=reply) as server:
        runner = OpenAIRunner("gpt-test", base_url=server.base_url, retry=FAST)
        [result] = ask(runner, request)
    assert result == LLMResult(
        text="Paris is the capital.",
        prompt_tokens=count_tokens("Answer in one sentence.")
        + count_tokens("What is the capital of France?"),
        completion_tokens=count_tokens("Paris is the capital."),
        model="gpt-test",
    )
    assert (result.prompt_tokens, result.completion_tokens) == (12, 5)
    [sent] = seen
    assert sent["model"] == "gpt-test"
    assert sent["messages"] == [
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    assert (sent["temperature"], sent["max_tokens"], sent["seed"]) == (0.5, 50, 7)
    assert sent["stop"] == ["\n\n"]
    assert runner.stats.succeeded == 1
    assert runner.stats.attempts == 1
    assert runner.stats.prompt_tokens == 12


def test_unset_options_are_not_sent_and_extra_body_is() -> None:
    seen: list[dict[str, Any]] = []

    def reply(request: Any) -> str:
        seen.append(dict(request))
        return "ok"

    with ChatServer(reply=reply) as server:
        runner = OpenAIRunner("m", base_url=server.base_url, extra_body={"top_k": 5})
        ask(runner, LLMRequest.from_prompt("hi", seed=None))
    assert "max_tokens" not in seen[0]
    assert "seed" not in seen[0]
    assert "stop" not in seen[0]
    assert seen[0]["top_k"] == 5


def test_missing_usage_is_estimated() -> None:
    with ChatServer(usage=False) as server:
        [result] = ask(OpenAIRunner("m", base_url=server.base_url), LLMRequest.from_prompt("a b c"))
    assert (result.prompt_tokens, result.completion_tokens) == (3, count_tokens("echo: a b c"))


def test_max_tokens_reaches_the_server() -> None:
    with ChatServer(reply=lambda r: "one two three four") as server:
        runner = OpenAIRunner("m", base_url=server.base_url)
        [result] = ask(runner, LLMRequest.from_prompt("count", max_tokens=2))
    assert (result.text, result.completion_tokens) == ("one two", 2)


# -- faults and retries -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_kind_recovers_with_the_same_text(kind: FaultKind) -> None:
    requests = prompts(3)
    with ChatServer() as server:
        clean = ask(OpenAIRunner("m", base_url=server.base_url), *requests)
    with ChatServer(faults=FaultPlan.scripted([kind]), slow_delay=1.0, drip_interval=0.1) as server:
        runner = OpenAIRunner("m", base_url=server.base_url, timeout=0.3, retry=FAST)
        faulty = ask(runner, *requests)
        stats = server.stats()
    assert faulty == clean
    assert stats.by_fault == {kind: 1}
    assert runner.stats.retries == 1
    assert runner.stats.attempts == 4


def test_twenty_percent_faults_over_200_requests_all_succeed() -> None:
    requests = prompts(200)
    with ChatServer() as server:
        clean = ask(OpenAIRunner("m", base_url=server.base_url), *requests)
    with ChatServer(fault_rate=0.2, seed=0, slow_delay=1.5, fault_attempts=2) as server:
        runner = OpenAIRunner(
            "m", base_url=server.base_url, timeout=0.5, retry=FAST, max_concurrency=32
        )
        faulty = ask(runner, *requests)
        stats = server.stats()
    assert faulty == clean
    assert set(stats.by_fault) == set(FAULT_KINDS)  # every kind happened at least once
    faults = sum(stats.by_fault.values())
    assert 40 <= faults <= 160
    assert runner.stats.retries >= faults  # a timed-out attempt may also have been retried
    assert runner.stats.succeeded == 200
    assert stats.completions >= 200


def test_persistent_500_raises_runner_error_naming_endpoint_and_model() -> None:
    with ChatServer(faults=FaultPlan.always("500")) as server:
        runner = OpenAIRunner("gpt-test", base_url=server.base_url, api_key=SECRET, retry=FAST)
        with pytest.raises(RunnerError) as info:
            ask(runner, LLMRequest.from_prompt("hello"))
        requests = server.stats().requests
    message = str(info.value)
    assert server.base_url in message
    assert "'gpt-test'" in message
    assert "5 attempts" in message
    assert "HTTP 500" in message
    assert "The server had an error (simulated)." in message
    assert requests == 5
    assert runner.stats.failed == 1
    for text in (message, repr(info.value), repr(runner), str(info.value.__cause__)):
        assert SECRET not in text


def test_401_is_not_retried_and_names_the_fix() -> None:
    with ChatServer(api_key="the-right-key") as server:
        runner = OpenAIRunner("gpt-test", base_url=server.base_url, api_key=SECRET, retry=FAST)
        with pytest.raises(RunnerError) as info:
            ask(runner, LLMRequest.from_prompt("hello"))
        requests = server.stats().requests
    assert str(info.value) == (
        f"authentication failed at {server.base_url} for model 'gpt-test': "
        "set OPENAI_API_KEY or pass api_key=..."
    )
    assert requests == 1


def test_right_key_is_sent() -> None:
    with ChatServer(api_key=SECRET) as server:
        runner = OpenAIRunner("m", base_url=server.base_url, api_key=SECRET)
        assert ask(runner, LLMRequest.from_prompt("hi"))[0].text == "echo: hi"


def test_404_and_400_are_not_retried() -> None:
    with ChatServer() as server:
        wrong_path = OpenAIRunner("m", base_url=server.base_url.replace("/v1", "/v2"), retry=FAST)
        with pytest.raises(RunnerError, match=r"HTTP 404.*check the model name"):
            ask(wrong_path, LLMRequest.from_prompt("hi"))
        bad_body = OpenAIRunner("m", base_url=server.base_url, extra_body={"messages": "x"})
        with pytest.raises(RunnerError, match=r"HTTP 400: invalid request body"):
            ask(bad_body, LLMRequest.from_prompt("hi"))
        assert server.stats().requests == 2


def test_retry_after_is_honoured() -> None:
    with ChatServer(faults=FaultPlan.scripted(["429"]), retry_after=0.2) as server:
        runner = OpenAIRunner("m", base_url=server.base_url, retry=FAST)
        ask(runner, LLMRequest.from_prompt("hi"))
        first, second = server.records
    assert (first.status, second.status) == (429, 200)
    assert first.key == second.key
    assert second.started - first.finished >= 0.19  # not the 0.01 s backoff
    assert runner.retry_stats.retries_by_cause == {"429": 1}
    assert runner.retry_stats.wait_seconds == pytest.approx(0.2)


def test_concurrency_cap_is_respected_at_the_server() -> None:
    with ChatServer(latency=0.02) as server:
        runner = OpenAIRunner("m", base_url=server.base_url, max_concurrency=4)
        results = ask(runner, *prompts(40))
        stats = server.stats()
    assert len(results) == 40
    assert 2 <= stats.max_in_flight <= 4
    assert runner.stats.throttle.max_in_flight <= 4
    assert stats.connections <= 4  # kept alive and reused


# -- configuration ----------------------------------------------------------------------------


def test_remote_endpoint_without_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        OpenAIRunner("gpt-4o-mini")
    assert str(info.value) == (
        "no API key for https://api.openai.com/v1: set OPENAI_API_KEY or pass api_key=..."
    )
    with pytest.raises(ConfigError, match=r"no API key for https://example\.test/v1"):
        OpenAIRunner("m", base_url="https://example.test/v1/")


def test_environment_supplies_key_and_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", "https://example.test/v1")
    runner = OpenAIRunner("m")
    assert runner.base_url == "https://example.test/v1"
    assert SECRET not in repr(runner)
    assert repr(runner).startswith("OpenAIRunner(model='m', base_url='https://example.test/v1'")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_local_endpoint_needs_no_key(host: str) -> None:
    assert OpenAIRunner("m", base_url=f"http://{host}:8000/v1").base_url.startswith("http://")


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="not both"):
        OpenAIRunner("m", base_url="http://127.0.0.1/v1", azure_endpoint="https://x.test")
    with pytest.raises(ConfigError, match="must start with http:// or https://"):
        OpenAIRunner("m", base_url="127.0.0.1:8000/v1")
    with pytest.raises(ConfigError, match="timeout must be > 0"):
        OpenAIRunner("m", base_url="http://127.0.0.1/v1", timeout=0)
    with pytest.raises(ConfigError, match="max_concurrency must be an integer >= 1"):
        OpenAIRunner("m", base_url="http://127.0.0.1/v1", max_concurrency=0)


def test_azure_needs_an_api_version_and_its_own_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.test")
    with pytest.raises(ConfigError, match="set OPENAI_API_VERSION or pass api_version"):
        OpenAIRunner("deployment")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    with pytest.raises(ConfigError, match="set AZURE_OPENAI_API_KEY or pass api_key"):
        OpenAIRunner("deployment")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", SECRET)
    runner = OpenAIRunner("deployment")
    assert runner.base_url == "https://res.openai.azure.test"
    assert "api_version='2024-10-21'" in repr(runner)
    assert SECRET not in repr(runner)


def test_azure_against_the_local_server() -> None:
    with ChatServer(api_key=SECRET) as server:
        runner = OpenAIRunner(
            "my-deployment",
            azure_endpoint=f"http://127.0.0.1:{server.port}",
            api_version="2024-10-21",
            api_key=SECRET,
        )
        [result] = ask(runner, LLMRequest.from_prompt("hi"))
        [record] = server.records
    assert result.text == "echo: hi"
    assert record.path == "/openai/deployments/my-deployment/chat/completions"


def test_generate_sync_can_be_called_repeatedly() -> None:
    with ChatServer() as server:
        runner = OpenAIRunner("m", base_url=server.base_url)
        texts = [runner.generate_sync(LLMRequest.from_prompt(f"q{i}")).text for i in range(2)]
    assert texts == ["echo: q0", "echo: q1"]


def test_runner_used_on_several_loops_without_closing_leaks_nothing() -> None:
    with ChatServer() as server:
        runner = OpenAIRunner("m", base_url=server.base_url)
        for i in range(2):
            assert (
                asyncio.run(runner.generate(LLMRequest.from_prompt(f"q{i}"))).text == f"echo: q{i}"
            )
            gc.collect()  # an unclosed socket would warn here, and warnings are errors
        assert server.stats().connections == 2  # one per loop


def test_importing_the_module_does_not_import_openai() -> None:
    heavy = ["openai", "httpx2", "aiohttp"]
    assert loaded_by_importing(["sammo_core.runners.openai_runner"], heavy) == []
