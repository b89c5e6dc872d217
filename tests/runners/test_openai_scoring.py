"""Scored answers (rank classification) from OpenAIRunner against the real loopback ChatServer,
whose scorer gives known log-probabilities: completions with echoed prompt log-probabilities in
both layouts, chat with the first token's top list, the errors, the cache and the ledger."""

from __future__ import annotations

import asyncio
import json
import math
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from sammo_core.errors import BudgetExceededError, ConfigError, RunnerError
from sammo_core.runners import AccountingRunner, Budget, RunnerStack, build_runner
from sammo_core.runners.base import LLMRequest, LLMResult, label_continuation
from sammo_core.runners.openai_runner import OpenAIRunner
from sammo_core.runners.openai_scoring import PROBE_PROMPT, UNLISTED_PENALTY
from sammo_core.runners.retry import RetryPolicy
from sammo_core.testing.chat_server import ChatServer, FaultPlan
from sammo_core.testing.logprobs import tokenize
from sammo_core.tokens import count_tokens

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, seed=0)
# Binary fractions: every sum below is exact, so results compare with ==.
TABLE = {"yes": -0.25, "no": -1.5, "very": -0.5, "good": -0.125, "not": -2.0, "at": -1.0}


def logprob(context: str, token: str) -> float:
    """Known, and different for every context: reading the wrong place gives wrong numbers."""
    return TABLE.get(token.strip(), -3.0) - len(context) / 64


def expected(prompt: str, label: str) -> float:
    """The sum over the label's tokens of their log-probability after the text before them."""
    text = prompt + label_continuation(prompt, label)
    total, at = 0.0, 0
    for token in tokenize(text):
        if at + len(token) > len(prompt):
            total += logprob(text[:at], token)
        at += len(token)
    return total


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    yield


def ask(runner: Any, *requests: LLMRequest) -> list[LLMResult]:
    async def main() -> list[LLMResult]:
        try:
            return [await runner.generate(r) for r in requests]
        finally:
            await runner.aclose()

    return asyncio.run(main())


def completion(prompt: str, labels: Sequence[str]) -> LLMRequest:
    return LLMRequest.from_prompt(prompt, mode="completion", labels=tuple(labels))


# -- completion mode: echoed prompt log-probabilities ------------------------------------------


@pytest.mark.parametrize("layout", ["aligned", "shifted"])
def test_completions_scoring_gives_the_known_logprobs_in_either_layout(layout: Any) -> None:
    prompt = "Is the food good? Answer:"
    labels = ("yes", "no", "very good", "not good at all")
    with ChatServer(logprob=logprob, logprobs_layout=layout) as server:
        runner = OpenAIRunner("base", base_url=server.base_url, retry=FAST)
        [result] = ask(runner, completion(prompt, labels))
        bodies = [r.path for r in server.records]
    assert result.label_logprobs == tuple(expected(prompt, label) for label in labels)
    # Multi-token labels sum their tokens: " very" then " good".
    assert result.label_logprobs[2] == logprob(prompt, " very") + logprob(prompt + " very", " good")
    assert result.text == "yes"  # the likeliest
    assert runner.echo_layout == layout  # the probe found it
    assert len(bodies) == 1 + len(labels)  # one probe, one request per label
    # The answer's cost is its label requests; the probe is the runner's overhead.
    assert result.calls == len(labels) and result.overhead[0] == 1


def test_the_shifted_layout_read_as_aligned_gives_other_numbers() -> None:
    prompt = "Is the food good? Answer:"
    with ChatServer(logprob=logprob, logprobs_layout="shifted") as server:
        runner = OpenAIRunner("base", base_url=server.base_url, echo_layout="aligned")
        [result] = ask(runner, completion(prompt, ["yes", "no"]))
    assert result.label_logprobs != (expected(prompt, "yes"), expected(prompt, "no"))


def test_a_label_merging_with_the_prompts_last_space_is_scored_by_the_merged_token() -> None:
    prompt = "Is the food good? Answer: "  # the server's " yes" token starts inside the prompt
    with ChatServer(logprob=logprob) as server:
        runner = OpenAIRunner("base", base_url=server.base_url, echo_layout="aligned")
        [result] = ask(runner, completion(prompt, ["yes", "no"]))
        sent = len(server.records)
    assert sent == 2  # a given layout needs no probe
    stem = prompt.rstrip()
    assert result.label_logprobs == (logprob(stem, " yes"), logprob(stem, " no"))


def test_usage_sums_the_servers_counts_over_every_call() -> None:
    prompt = "Is the food good? Answer:"
    labels = ("yes", "no")
    with ChatServer(logprob=logprob) as server:
        runner = OpenAIRunner("base", base_url=server.base_url)
        first, second = ask(runner, completion(prompt, labels), completion(prompt, labels))
        stats = runner.stats
    texts = [prompt + label_continuation(prompt, label) for label in labels]
    # The server counts the prompt with count_tokens and generates one token ("echo"). Both
    # answers cost the same; the first also carries the probe, as the runner's overhead.
    for result in (first, second):
        assert result.prompt_tokens == sum(map(count_tokens, texts))
        assert (result.completion_tokens, result.calls) == (2, 2)
    assert first.overhead == (1, count_tokens(PROBE_PROMPT), 1) and second.overhead == (0, 0, 0)
    assert (stats.calls, stats.succeeded) == (5, 5)
    spent = first.prompt_tokens + second.prompt_tokens + first.overhead[1]
    assert stats.prompt_tokens == spent


def test_each_label_request_is_retried_and_counted_alone() -> None:
    with ChatServer(logprob=logprob, faults=FaultPlan.scripted([None, "500", "429"])) as server:
        runner = OpenAIRunner("base", base_url=server.base_url, retry=FAST)
        [result] = ask(runner, completion("Good? Answer:", ["yes", "no"]))
        stats = runner.retry_stats
    assert result.label_logprobs == (
        expected("Good? Answer:", "yes"),
        expected("Good? Answer:", "no"),
    )
    assert (stats.calls, stats.attempts, stats.retries) == (3, 5, 2)


def test_a_server_without_logprobs_is_an_error_that_names_the_fix() -> None:
    with ChatServer(logprobs_layout="none") as server:
        runner = OpenAIRunner("base", base_url=server.base_url, retry=FAST)
        with pytest.raises(RunnerError) as caught:
            ask(runner, completion("Good? Answer:", ["yes", "no"]))
        assert len(server.records) == 1  # the probe, not retried
    message = str(caught.value)
    assert server.base_url in message
    assert "no echoed prompt log-probabilities" in message
    assert "llama-cpp-python's server, vLLM" in message
    assert "drop the labels (--labels" in message


# -- chat mode: the first answer token ---------------------------------------------------------

CHAT = {"Yes": -0.5, "yes": -1.5, " yes": -2.5, "No": -2.0, "no": -3.0, " no": -4.0}


def chat_logprob(context: str, token: str) -> float:
    return CHAT.get(token, -6.0)


def logsumexp(values: Sequence[float]) -> float:
    return math.log(sum(math.exp(v) for v in values))


def test_chat_scoring_sums_the_first_tokens_that_begin_each_label() -> None:
    request = LLMRequest.from_prompt("Good?", system="Answer yes or no.", labels=("no", "yes"))
    maybe = LLMRequest.from_prompt("Good?", labels=("yes", "maybe"))
    with ChatServer(logprob=chat_logprob) as server:
        runner = OpenAIRunner("chat", base_url=server.base_url, top_logprobs=5)
        result, unlisted = ask(runner, request, maybe)
        records = server.records
    # The top 5 are Yes, yes, No, " yes", no (" no" is not among them); the token chosen,
    # "echo" (the server's reply), is listed too.
    no, yes = result.label_logprobs
    assert no == pytest.approx(logsumexp([-2.0, -3.0]), abs=1e-12)
    assert yes == pytest.approx(logsumexp([-0.5, -1.5, -2.5]), abs=1e-12)
    assert (result.text, result.calls, result.completion_tokens) == ("yes", 1, 1)
    # "maybe" begins no listed token: the lowest listed ("echo", -6) minus log(2).
    assert unlisted.label_logprobs[1] == -6.0 - UNLISTED_PENALTY
    assert len(records) == 2 and all(r.path == "/v1/chat/completions" for r in records)


def test_chat_labels_sharing_their_first_word_are_refused_before_any_call() -> None:
    request = LLMRequest.from_prompt("Is it?", labels=("yes it is", "yes no"))
    with ChatServer() as server:
        runner = OpenAIRunner("chat", base_url=server.base_url)
        with pytest.raises(ConfigError, match="'yes it is' and 'yes no' both begin with 'yes'"):
            ask(runner, request)
        with pytest.raises(ConfigError, match="completion mode"):
            ask(runner, LLMRequest.from_prompt("Which?", labels=("1", "10")))
        assert server.records == ()


def test_a_chat_server_without_logprobs_is_an_error_that_names_the_fix() -> None:
    with ChatServer(logprobs_layout="none") as server:
        runner = OpenAIRunner("chat", base_url=server.base_url)
        with pytest.raises(RunnerError, match="no log-probabilities for a chat completion"):
            ask(runner, LLMRequest.from_prompt("Good?", labels=("yes", "no")))


# -- cache and ledger --------------------------------------------------------------------------


async def run_once(stack: RunnerStack, request: LLMRequest) -> LLMResult:
    try:
        return await stack.runner.generate(request)
    finally:
        await stack.aclose()


def test_the_cache_stores_and_replays_label_logprobs_exactly(tmp_path: Path) -> None:
    request = completion("Is the food good? Answer:", ["yes", "no", "very good"])
    with ChatServer(logprob=logprob, logprobs_layout="shifted") as server:
        results = []
        for _ in range(2):
            stack = build_runner("base", base_url=server.base_url, cache=tmp_path / "c.sqlite")
            results.append((asyncio.run(run_once(stack, request)), stack.usage))
        sent = len(server.records)
    (first, first_usage), (replayed, replay_usage) = results
    assert not first.cached and replayed.cached
    assert replayed.label_logprobs == first.label_logprobs
    assert replayed.label_logprobs == tuple(
        expected("Is the food good? Answer:", label) for label in ("yes", "no", "very good")
    )
    assert sent == 4  # the probe and three labels, once
    assert (first_usage.calls, replay_usage.calls, replay_usage.cache_hits) == (4, 0, 1)


def test_the_ledger_counts_every_call_and_reserves_them_before_sending() -> None:
    labels = ("yes", "no", "very good")
    with ChatServer(logprob=logprob) as server:
        runner = AccountingRunner(OpenAIRunner("base", base_url=server.base_url))
        request = completion("Good? Answer:", labels)
        assert runner.reservation(request).calls == 4  # probe + 3 labels
        ask(runner, request)
        assert runner.usage.calls == 4
        assert runner.reservation(request).calls == 3  # probed: the layout is known
        chat = AccountingRunner(OpenAIRunner("chat", base_url=server.base_url))
        ask(chat, LLMRequest.from_prompt("Good?", labels=("yes", "no")))
        assert chat.usage.calls == 1
        sent = len(server.records)
        tight = AccountingRunner(OpenAIRunner("base", base_url=server.base_url), Budget(calls=3))
        with pytest.raises(BudgetExceededError, match="calls budget"):
            ask(tight, request)  # 4 calls planned, 3 allowed: refused before any is sent
        assert len(server.records) == sent
    assert sent == 5


# -- the server's shapes -----------------------------------------------------------------------


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as response:
        answer: dict[str, Any] = json.load(response)
    return answer


@pytest.mark.parametrize(
    ("layout", "first", "listed"),
    [("aligned", None, ["Q", ":", " yes", "echo"]), ("shifted", -3.015625, ["Q", ":", " yes"])],
)
def test_the_server_echoes_prompt_logprobs_in_openais_shape(
    layout: Any, first: float | None, listed: list[str]
) -> None:
    with ChatServer(logprob=logprob, logprobs_layout=layout) as server:
        body = {"model": "m", "prompt": "Q: yes", "echo": True, "logprobs": 1, "max_tokens": 1}
        choice = post(server.base_url + "/completions", body)["choices"][0]
    assert choice["text"] == "Q: yesecho"
    assert choice["logprobs"]["tokens"] == listed
    assert choice["logprobs"]["token_logprobs"][0] == first
    assert choice["logprobs"]["text_offset"] == [0, 1, 2, 6][: len(listed)]
